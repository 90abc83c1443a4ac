"""Events past their plan's retention go: a daily job ("expire events") the workers'
scheduler queues, also `flask analytics expire` for cron.

What we chose, and why: each tenant's expired events are deleted through the (tenant,
time) index in batches of BATCH rows, one short transaction each, and its roll-ups
older than the retention with them (and what dashboards kept that counted them). The
cost follows what expires (a day's events a day), not the table's size, and no batch
holds locks for long; the dashboards already hide anything older than the retention
(their range starts there). Time partitions
(DROP of a month at a time) would cost nothing per row, but the pool's shared table
mixes tenants with retentions of 30 days to 2 years, so a partition could only be
dropped after the longest, and the tables would no longer be the same in every tier
(moves and exports copy one table shape). docs/analytics.md has the figures.
"""
import logging
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import select, text

from portal.analytics.events import retention_days
from portal.analytics.queries import EPOCH, forget_kept, lock_analytics
from portal.extensions import db
from portal.lifecycle import dispatch
from portal.models import WITH_STORAGE, ActivityDay, Job, Tenant, TenantActivityDay
from portal.services import cache, jobqueue
from portal.tenancy.context import TenantRef
from portal.tenancy.placement import qualified_table, tenant_transaction

log = logging.getLogger(__name__)

BATCH = 10_000
JOB_KIND = "expire events"
EVERY = timedelta(days=1)
# The staff overview reads 30 days; a registry row older than the longest retention has no use.
REGISTRY_DAYS = 3650


def expire_tenant(tenant, today=None):
    """Delete the tenant's events and roll-ups older than its retention; returns
    (events deleted, roll-up rows deleted)."""
    today = today or datetime.now(timezone.utc).date()
    first_kept = today - timedelta(days=retention_days(tenant) - 1)
    cutoff = datetime.combine(first_kept, time(), timezone.utc)
    events = rollups = 0
    while True:
        with tenant_transaction(tenant) as session:
            deleted = session.execute(text(f"""
                DELETE FROM {qualified_table(session, 'events')} WHERE ctid = ANY(ARRAY(
                  SELECT ctid FROM {qualified_table(session, 'events')} WHERE occurred_at < :cutoff LIMIT {BATCH}))"""),
                {"cutoff": cutoff}).rowcount
        events += deleted
        if deleted < BATCH:
            break
    with tenant_transaction(tenant) as session:
        lock_analytics(session, tenant.id)
        rollups = session.execute(text(f"DELETE FROM {qualified_table(session, 'event_rollups')} WHERE day < :day"),
                                  {"day": first_kept}).rowcount
        if events or rollups:  # what dashboards kept that counted the expired days
            forget_kept(session, EPOCH, first_kept - timedelta(days=1))
    if events or rollups:
        cache.touch(tenant.id)
    return events, rollups


def expire_all(progress=None):
    """Every served tenant, one after the other; a tenant that fails is logged and the
    rest go on. Returns {"tenants", "events", "rollups", "failed"}."""
    tenants = db.session.execute(select(Tenant).where(Tenant.status.in_(WITH_STORAGE))).scalars().all()
    totals = {"tenants": len(tenants), "events": 0, "rollups": 0, "failed": []}
    for n, tenant in enumerate(tenants):
        try:
            events, rollups = expire_tenant(TenantRef.of(tenant))
        except Exception:  # noqa: BLE001 - one tenant's storage down must not stop the others
            log.exception("events of %s not expired", tenant.slug)
            totals["failed"].append(tenant.slug)
            continue
        totals["events"] += events
        totals["rollups"] += rollups
        if progress is not None and n % 100 == 0:
            progress.fraction("expire", (n + 1) / len(tenants))
    oldest = datetime.now(timezone.utc).date() - timedelta(days=REGISTRY_DAYS)
    for table in (TenantActivityDay.__table__, ActivityDay.__table__):
        db.session.execute(table.delete().where(table.c.day < oldest))
    db.session.commit()
    return totals


def run_job(job, progress):
    """The daily job: expire, then queue the next one."""
    progress.step("expire", "running")
    totals = expire_all(progress)
    progress.step("expire", "done")
    progress.finish("succeeded", **totals)
    schedule(datetime.now(timezone.utc) + EVERY)


dispatch.register_handler(JOB_KIND, run_job)


def next_run():
    """03:00 UTC tomorrow: a quiet hour for most."""
    return datetime.combine(datetime.now(timezone.utc).date() + EVERY, time(3), timezone.utc)


def schedule(when=None):
    """Queue the next daily run at `when` (now when None), unless one is already waiting."""
    waiting = db.session.execute(select(Job.id).where(Job.kind == JOB_KIND, Job.state == "queued")).first()
    if waiting:
        return None
    job = jobqueue.create(JOB_KIND, None, ["expire"], "retention")
    db.session.commit()
    return jobqueue.enqueue_at(job, when) if when else jobqueue.enqueue(job)
