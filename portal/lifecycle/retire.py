"""The end of a tenant: deprovisioning (export, storage and role removed, Redis keys
cleared, sessions ended, the row kept `archived` with its export), then, after the
retention period or by staff, purging (the export and the rest removed, `purged`).

Both run as jobs; each step is idempotent, so a failed or interrupted run is retried.
"""
import os
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select

from portal.extensions import db
from portal.lifecycle import moves
from portal.lifecycle.exports import delete_rows, write_export
from portal.lifecycle.saga import Step, run_steps
from portal.lifecycle.storage import drop_storage
from portal.models import WITH_STORAGE, Tenant
from portal.services import audit_events, jobqueue
from portal.services.errors import Refused
from portal.services.keys import clear_tenant_keys
from portal.tenancy.context import TenantRef
from portal.tenancy.lookup import forget_tenant

DEPROVISION_STEPS = ["export", "storage and role", "redis keys", "sessions and tokens", "archive"]


def request_deprovision(tenant, confirm_slug, actor=None):
    """Start deprovisioning; the slug must be typed to confirm. Returns the job."""
    if (confirm_slug or "").strip() != tenant.slug:
        raise Refused(f"Type the tenant's slug ({tenant.slug}) to confirm.", "confirm")
    if tenant.status not in WITH_STORAGE:
        raise Refused(f"Only an active or suspended tenant can be deprovisioned; this one is {tenant.status}.")
    previous = tenant.status
    tenant.status = "deprovisioning"
    tenant.session_epoch += 1
    job = jobqueue.create("deprovision", tenant.id, DEPROVISION_STEPS, audit_events.actor_label(actor),
                          params={"from": previous})
    audit_events.record("tenant.deprovisioning", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                        details={"from": previous, "job": str(job.id)})
    db.session.commit()
    forget_tenant(tenant)
    return job


def deprovision(job, progress):
    tenant = db.session.get(Tenant, job.tenant_id)
    if tenant is None or tenant.status != "deprovisioning":
        raise Refused(f"The tenant is {tenant.status if tenant else 'gone'}, not being deprovisioned.")
    ref = TenantRef.of(tenant)

    def export(_):
        path, manifest = write_export(tenant, progress)
        tenant.export_path = path
        job.result = {**job.result, "path": path, "tables": manifest["tables"]}
        db.session.commit()

    def remove_storage(_):
        moves.drop_old_copies(tenant.id, force=True)  # a recent move's, kept: it goes with the tenant
        if tenant.tier == "pool":
            delete_rows(tenant)
        else:
            drop_storage(tenant.id, tenant.tier, ref.placement_env)

    def redis_keys(_):
        forget_tenant(tenant)
        job.result = {**job.result, "redis_keys_removed": clear_tenant_keys(tenant.id)}
        db.session.commit()

    def sessions(_):
        # Sessions carry the epoch they were made in; a new epoch ends them all.
        # API tokens need nothing more: they lived in the tenant's storage, now dropped.
        tenant.session_epoch += 1
        db.session.commit()

    def archive(_):
        now = datetime.now(timezone.utc)
        days = current_app.config["PORTAL_RETENTION_DAYS"]
        tenant.status, tenant.archived_at = "archived", now
        tenant.purge_after = now + timedelta(days=days)
        audit_events.record("tenant.archived", actor=("system", None, job.created_by), tenant_id=tenant.id,
                            target=tenant.slug, details={"export": os.path.basename(tenant.export_path or ""),
                                                         "purge_after": tenant.purge_after.isoformat()})
        purge_job = jobqueue.create("purge", tenant.id, ["export file", "registry"], "retention")
        db.session.commit()
        forget_tenant(tenant)
        jobqueue.enqueue_at(purge_job, tenant.purge_after)

    run_steps([Step("export", export), Step("storage and role", remove_storage), Step("redis keys", redis_keys),
               Step("sessions and tokens", sessions), Step("archive", archive)], None, progress)
    progress.finish("succeeded")


def expired():
    """Archived tenants whose retention has ended."""
    return db.session.execute(
        select(Tenant).where(Tenant.status == "archived", Tenant.purge_after <= datetime.now(timezone.utc))
        .order_by(Tenant.purge_after)
    ).scalars().all()


def request_purge(tenant, confirm_slug, actor=None):
    """Purge an archived tenant now, before its retention ends (staff); for good, so the
    slug must be typed to confirm, as for deprovisioning."""
    if (confirm_slug or "").strip() != tenant.slug:
        raise Refused(f"Type the tenant's slug ({tenant.slug}) to confirm.", "confirm")
    if tenant.status != "archived":
        raise Refused(f"Only an archived tenant can be purged; this one is {tenant.status}.")
    job = jobqueue.create("purge", tenant.id, ["export file", "registry"], audit_events.actor_label(actor),
                          params={"now": True})
    audit_events.record("tenant.purge_requested", actor=actor, tenant_id=tenant.id, target=tenant.slug)
    db.session.commit()
    return job


def purge(job, progress):
    tenant = db.session.get(Tenant, job.tenant_id)
    if tenant is None or tenant.status == "purged":
        progress.finish("succeeded", note="already purged")
        return
    if tenant.status != "archived":
        raise Refused(f"Only an archived tenant can be purged; this one is {tenant.status}.")
    due = tenant.purge_after is None or tenant.purge_after <= datetime.now(timezone.utc)
    if not (due or job.params.get("now")):
        raise Refused(f"Retention runs until {tenant.purge_after:%Y-%m-%d}; purge it by hand to do it sooner.")

    def export_file(_):
        if tenant.export_path and os.path.exists(tenant.export_path):
            os.remove(tenant.export_path)

    def registry(_):
        for domain in list(tenant.domains):
            db.session.delete(domain)
        tenant.status, tenant.export_path = "purged", None
        audit_events.record("tenant.purged", actor=("system", None, job.created_by), tenant_id=tenant.id,
                            target=tenant.slug)
        db.session.commit()
        forget_tenant(tenant)

    run_steps([Step("export file", export_file), Step("registry", registry)], None, progress)
    progress.finish("succeeded")
