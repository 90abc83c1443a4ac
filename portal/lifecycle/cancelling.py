"""Cancelling a queued or running job, where its kind allows it.

- an export: queued, it is marked `cancelled` at once and the worker skips it
  (dispatch.execute); running, it is asked to stop (`Job.cancel_requested`), which the
  export checks between tables, and the saga's undo removes the partial file; the job
  ends `cancelled`.
- a move, before its switch: the move's own cancel (lifecycle/moves.py: the move undoes
  what it made, the tenant stays where it was, untouched); its job ends `cancelled`.
- every other kind is refused with the reason: provisioning and importing undo their
  steps only when one fails (discard the tenant afterwards), deprovisioning and purging
  remove for good as they go, an upgrade and a drain are many tenants' work.
"""
from datetime import datetime, timezone

from sqlalchemy import update

from portal.extensions import db
from portal.lifecycle import moves
from portal.models import Job, Tenant, TenantMove
from portal.services import audit_events, jobqueue
from portal.services.errors import Refused

CANCELLABLE = ("export", "move")
NOT_CANCELLABLE = {
    "provision": "A provisioning cannot be cancelled: its steps are undone only if one fails. "
                 "Discard the tenant once it is done.",
    "import": "An import cannot be cancelled: its steps are undone only if one fails. "
              "Discard the tenant once it is done.",
    "deprovision": "A deprovisioning cannot be cancelled: it removes the tenant's storage as it goes.",
    "purge": "A purge cannot be cancelled: it removes the tenant for good.",
    "upgrade": "An upgrade run cannot be cancelled: each tenant's upgrade is one migration; "
               "a failed one is retried.",
    "drop old copy": "Dropping a move's old copy cannot be cancelled.",
    "drain": "A drain cannot be cancelled here: cancel the move of its tenant that is under way.",
}


def refusal(job):
    """Why `job` cannot be cancelled now (None: it can)."""
    if job.kind not in CANCELLABLE:
        return NOT_CANCELLABLE.get(job.kind, f"A job of kind {job.kind} cannot be cancelled.")
    state = jobqueue.shown_state(job)
    if state not in ("queued", "running"):
        return f"Only a queued or running job can be cancelled; this one is {state}."
    if job.cancel_requested:
        return "This job has been asked to stop already."
    if job.kind == "move":
        move = _move_of(job)
        if move is None or not move.under_way or move.state == "frozen":
            return "Only a move that has not begun to switch can be cancelled."
    return None


def cancellable(job):
    return refusal(job) is None


def _move_of(job):
    move_id = (job.params or {}).get("move")
    return db.session.get(TenantMove, move_id) if move_id else None


def cancel(job, actor=None):
    """Cancel `job` (committed, audited); Refused with the reason, changing nothing.
    Returns the words to tell staff."""
    reason = refusal(job)
    if reason is not None:
        raise Refused(reason)
    if job.kind == "move":
        job.cancel_requested = True
        moves.cancel(_move_of(job), actor)  # (audits tenant.move_cancel_requested, commits)
        return "Cancelling: the move undoes what it made; the tenant stays where it was."
    # An export. Queued: cancelled now, unless a worker took it this instant (then it is
    # running, and the flag below stops it between tables).
    job.cancel_requested = True
    db.session.flush()
    taken = db.session.execute(
        update(Job).where(Job.id == job.id, Job.state == "queued")
        .values(state="cancelled", finished_at=datetime.now(timezone.utc),
                error=f"cancelled by {audit_events.actor_label(actor)}")
        .execution_options(synchronize_session=False)
    ).rowcount
    tenant = db.session.get(Tenant, job.tenant_id) if job.tenant_id else None
    audit_events.record("job.cancelled" if taken else "job.cancel_requested", actor=actor, tenant_id=job.tenant_id,
                        target=tenant.slug if tenant else None,
                        details={"job": str(job.id), "kind": job.kind, "was": "queued" if taken else "running"})
    db.session.commit()
    db.session.refresh(job)
    if taken:
        return "Cancelled: the export will not run."
    return "Cancelling: the export stops after the table it is writing and removes its partial file."

