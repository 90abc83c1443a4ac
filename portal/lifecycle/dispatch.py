"""The workers' entry point: `execute(job_id)` runs a job by its kind."""
import uuid

from portal.extensions import db
from portal.lifecycle import exports, moves, provisioning, retire, upgrade
from portal.services import jobqueue
from portal.services.errors import Refused

HANDLERS = {
    "provision": provisioning.provision,
    "export": exports.run_export,
    "import": provisioning.provision,
    "deprovision": retire.deprovision,
    "purge": retire.purge,
    "upgrade": upgrade.run_job,
    "move": moves.run,
    "drop old copy": moves.run_drop,
    "drain": moves.run_drain,
}


def register_handler(kind, handler):
    """A feature's own job kind (imports point from features to lifecycle, not back):
    `handler(job, progress)` runs jobs of `kind`."""
    HANDLERS[kind] = handler


def execute(job_id):
    """Run the job (in the current app context, or the worker's own app)."""
    return jobqueue.in_app(_execute, uuid.UUID(str(job_id)))


def _execute(job_id):
    job = jobqueue.get(job_id)
    if job is None or job.state in ("succeeded", "cancelled"):
        return None  # removed, already done by an earlier delivery, or cancelled while queued
    jobqueue.run(job, HANDLERS[job.kind])
    return job.state


def retry(job):
    """Queue a failed or interrupted job again (one whose worker stopped beating counts as
    interrupted); its steps are idempotent."""
    state = jobqueue.shown_state(job)
    if state not in ("failed", "interrupted"):
        raise Refused(f"Only a failed or interrupted job can be retried; this one is {state}.")
    job.state, job.cancel_requested = "queued", False  # (a cancel asked of its last run is over)
    db.session.commit()
    jobqueue.enqueue(job)
    return job
