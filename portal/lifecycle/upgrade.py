"""The tenant upgrade runner: applies the tenant Alembic history to the pool tables,
every bridge schema and every silo database.

- A target is one set of tenant tables: the pool (shared by every pool tenant), one
  bridge schema, or one silo database. Each is migrated in its own transaction as the
  owner of its server; a target that fails is reported and rolled back to its old
  version, and the others go on.
- Whether a tenant is current is read from the registry (`tenants.schema_version`, kept
  by this runner and by provisioning): one query for all tenants, no connection to the
  tenant's server. Running again resumes where a run stopped.
- One run at a time: a PostgreSQL advisory lock, and an `upgrade_runs` row that a second
  run names in its refusal.
- `jobs` > 1 migrates targets in that many worker processes, not threads: Alembic's
  `op` and `context` are module-level proxies, so two migrations in one process would
  run against each other's connections.
"""
import logging
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import func, select, text, update

from portal.dbsetup import migrate_schema, owner_engine, tenant_head
from portal.extensions import db
from portal.models import WITH_STORAGE, Tenant, UpgradeRun
from portal.services import audit_events, jobqueue
from portal.services.errors import Refused
from portal.tenancy.data import TENANT_SCHEMA
from portal.tenancy.names import database_name, schema_name
from portal.tenancy.placement import placement_owner_url

log = logging.getLogger(__name__)
# Tenants whose tables exist and are kept current (not being made, failed or gone).
LOCK_KEY = 0x7E4A_47_5550  # "tenant upgrade": any constant, the same in every process


@dataclass
class Target:
    label: str
    tier: str
    schema: str
    owner_url: str
    tenant_ids: list = field(default_factory=list)
    database: str = None


@dataclass
class Result:
    target: Target
    ok: bool
    revision: str = None
    error: str = None
    seconds: float = 0.0


def plan(slugs=(), everyone=False, script_location=None):
    """(targets behind the head, number of tenants already current, head)."""
    if not slugs and not everyone:
        raise Refused("Name tenants by slug, or ask for --all.")
    head = tenant_head(script_location)
    query = select(Tenant).where(Tenant.status.in_(WITH_STORAGE)).order_by(Tenant.slug)
    if slugs:
        query = query.where(Tenant.slug.in_(slugs))
    tenants = db.session.execute(query).scalars().all()
    unknown = sorted(set(slugs) - {t.slug for t in tenants})
    if unknown:
        raise Refused(f"No tenant with slug {', '.join(unknown)}.")
    behind = [t for t in tenants if t.schema_version != head]
    registry_url = current_app.config["DATABASE_URL"]
    targets, pool_ids = [], [t.id for t in behind if t.tier == "pool"]
    if pool_ids:
        # The pool's tables are shared: upgrading them upgrades every pool tenant.
        all_pool = db.session.execute(select(Tenant.id).where(Tenant.tier == "pool")).scalars().all()
        targets.append(Target("pool (tenant_data)", "pool", TENANT_SCHEMA, registry_url, list(all_pool)))
    for t in behind:
        if t.tier == "bridge":
            targets.append(Target(t.slug, "bridge", schema_name(t.id), registry_url, [t.id]))
        elif t.tier == "silo":
            targets.append(Target(t.slug, "silo", TENANT_SCHEMA, placement_owner_url(t.placement.url_env),
                                  [t.id], database=database_name(t.id)))
    return targets, len(tenants) - len(behind), head


_engines = {}


def _engine(url, database):
    """One owner engine per server and database in this process (making one per target
    cost more than a no-op migration)."""
    key = (url, database)
    if key not in _engines:
        _engines[key] = owner_engine(url, database=database)
    return _engines[key]


def _dispose_engines():
    while _engines:
        _engines.popitem()[1].dispose()


def _migrate(target, script_location):
    """Migrate one target in its own transaction; never raises (the others go on)."""
    started = time.perf_counter()
    engine = _engine(target.owner_url, target.database)
    try:
        with engine.begin() as conn:
            revision = migrate_schema(conn, target.schema, script_location=script_location)
        return Result(target, True, revision=revision, seconds=time.perf_counter() - started)
    except Exception as exc:
        message = str(getattr(exc, "orig", exc)).strip()
        reason = message.splitlines()[0] if message else repr(exc)
        return Result(target, False, error=reason, seconds=time.perf_counter() - started)
    finally:
        if target.database:  # a silo database: one of many, do not keep its connection
            _engines.pop((target.owner_url, target.database), engine).dispose()


def _results(targets, jobs, script_location):
    """Results as they arrive: in this process for one job, else in worker processes."""
    if jobs <= 1:
        try:
            for target in targets:
                yield _migrate(target, script_location)
        finally:
            _dispose_engines()
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as workers:
        futures = [workers.submit(_migrate, target, script_location) for target in targets]
        for future in as_completed(futures):
            yield future.result()


class RunLock:
    """The advisory lock that lets one upgrade run at a time (held on its own connection)."""

    def __init__(self):
        self.engine = owner_engine(current_app.config["DATABASE_URL"])
        self.conn = None

    def acquire(self):
        self.conn = self.engine.connect()
        got = self.conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()
        self.conn.commit()
        if not got:
            self.release()
            running = db.session.execute(
                select(UpgradeRun).where(UpgradeRun.status == "running").order_by(UpgradeRun.started_at.desc())
            ).scalars().first()
            who = f"run {running.id}, started by {running.started_by} at {running.started_at:%Y-%m-%d %H:%M:%S}" \
                if running else "another process"
            raise Refused(f"An upgrade is already running ({who}); wait for it to finish.")

    def release(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.engine.dispose()


def run(targets, started_by, jobs=1, script_location=None, on_result=None, target_name="head", lock=None):
    """Migrate `targets` in `jobs` worker processes (1: here); record the run; return it.
    `on_result` is called with each Result as it arrives (progress). `lock`: one the
    caller already holds (it is released at the end)."""
    if lock is None:
        lock = RunLock()
        lock.acquire()
    try:
        # A run that died without finishing left its row `running`: it was interrupted.
        db.session.execute(update(UpgradeRun).where(UpgradeRun.status == "running")
                           .values(status="interrupted", finished_at=datetime.now(timezone.utc)))
        record = UpgradeRun(id=uuid.uuid4(), started_by=started_by, status="running", target=target_name,
                            total=len(targets), results=[])
        db.session.add(record)
        audit_events.record("tenants.upgrade_started", actor=("system", None, started_by),
                            details={"run": str(record.id), "targets": len(targets), "jobs": jobs})
        db.session.commit()
        for result in _results(targets, jobs, script_location):
            _record(record, result)
            if on_result:
                on_result(result)
        record.status = "done" if record.failed == 0 else "failed"
        record.finished_at = datetime.now(timezone.utc)
        audit_events.record("tenants.upgrade_finished", actor=("system", None, started_by),
                            details={"run": str(record.id), "done": record.done, "failed": record.failed})
        db.session.commit()
        return record
    finally:
        lock.release()


def _record(record, result):
    """Keep the registry's versions and the run's progress as each target finishes.
    Only failures are kept in the run's results (successes are counted): rewriting a
    list of every target after each one grew with the square of the targets."""
    if result.ok:
        db.session.execute(update(Tenant).where(Tenant.id.in_(result.target.tenant_ids))
                           .values(schema_version=result.revision))
        record.done += 1
    else:
        record.failed += 1
        record.results = record.results + [{
            "target": result.target.label, "tier": result.target.tier, "ok": False,
            "error": result.error, "ms": round(result.seconds * 1000, 1),
        }]
    db.session.commit()


def overview(limit=200):
    """What the upgrades page shows: head, tenants behind it, the running and recent runs."""
    head = tenant_head()
    served = Tenant.status.in_(WITH_STORAGE)
    is_behind = Tenant.schema_version.is_distinct_from(head)
    behind = db.session.execute(
        select(Tenant).where(served, is_behind).order_by(Tenant.slug).limit(limit)).scalars().all()
    behind_count = db.session.execute(select(func.count()).select_from(Tenant).where(served, is_behind)).scalar_one()
    current = db.session.execute(
        select(func.count()).select_from(Tenant).where(served, Tenant.schema_version == head)).scalar_one()
    runs = db.session.execute(select(UpgradeRun).order_by(UpgradeRun.started_at.desc()).limit(10)).scalars().all()
    running = next((r for r in runs if r.status == "running"), None)
    return {"head": head, "behind": behind, "behind_count": behind_count, "current": current, "runs": runs,
            "running": running}


def request_upgrade(started_by):
    """Queue an upgrade of every tenant behind, as a job for the workers (the caller
    enqueues it). Refused at once if none is behind or a run holds the lock."""
    targets, _, _ = plan(everyone=True)
    if not targets:
        raise Refused("Every tenant is current.")
    probe = RunLock()
    probe.acquire()  # refused here, naming the run that holds it
    probe.release()
    job = jobqueue.create("upgrade", None, ["upgrade"], started_by, params={"targets": len(targets)})
    db.session.commit()
    return job


def run_job(job, progress):
    """The worker's half: plan again (it may have changed) and run, with progress."""
    progress.step("upgrade", "running")
    targets, current, head = plan(everyone=True)
    total = max(1, len(targets))
    seen = []

    def on_result(result):
        seen.append(result)
        progress.fraction("upgrade", len(seen) / total)

    record = run(targets, job.created_by, on_result=on_result)
    progress.step("upgrade", "done" if record.failed == 0 else "failed")
    progress.finish("succeeded" if record.failed == 0 else "failed",
                    error=f"{record.failed} target(s) failed" if record.failed else None,
                    run=str(record.id), done=record.done, failed=record.failed, head=head)
