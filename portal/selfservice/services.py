from sqlalchemy import func, select

from portal.extensions import db
from portal.lifecycle.exports import request_export
from portal.models import Job, Tenant
from portal.services import entitlements, jobqueue, metering
from portal.services.errors import NotFound
from portal.services.rows import registry_row
from portal.tenancy.context import require_tenant
from portal.tenancy.data import Order
from portal.tenancy.placement import tenant_session


def usage_summary():
    """The current tenant's plan (overrides applied) and what it uses of it: the same
    figures the Usage page and the quotas use (portal/services/metering.py)."""
    tenant = require_tenant()
    with tenant_session() as session:
        users = metering.user_count(tenant, session)
        orders, revenue = session.execute(
            select(func.count(), func.coalesce(func.sum(Order.amount_cents), 0)).select_from(Order)
        ).one()
    return {
        "granted": entitlements.current(),
        "users": users,
        "orders": orders,
        "revenue_cents": revenue,
        "storage_mb": round(metering.storage_bytes(tenant) / 1_048_576, 2),
    }


def latest_export():
    """The current tenant's newest export job, or None."""
    tenant = require_tenant()
    return db.session.execute(
        select(Job).where(Job.tenant_id == tenant.id, Job.kind == "export").order_by(Job.created_at.desc()).limit(1)
    ).scalar_one_or_none()


def own_export(job_id):
    """The current tenant's export job `job_id` (NotFound for any other job)."""
    job = registry_row(Job, job_id, require_tenant().id)
    if job.kind != "export":
        raise NotFound(job_id)
    return job


def start_export(actor):
    tenant = db.session.get(Tenant, require_tenant().id)
    job = request_export(tenant, actor)
    jobqueue.enqueue(job)
    return job
