"""Jobs: long work (provisioning, export, import, deprovisioning, purge) run by RQ
workers, never inside a request. A job record in the registry carries its tenant, steps,
percent and log, so pages can show live progress.

A job whose worker died leaves its record `running` with an old heartbeat; such jobs are
marked `interrupted` (by the next worker to start, and when a page looks at them), and a
retry runs them again: every step is idempotent.
"""
import logging
import os
import threading
from datetime import datetime, timedelta, timezone

import redis
from flask import current_app, has_app_context
from rq import Queue
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import Job, Tenant
from portal.services.rows import registry_row
from portal.tenancy.context import TenantRef, tenant_context

log = logging.getLogger(__name__)


def _now():
    return datetime.now(timezone.utc)


def queue():
    """The RQ queue (its own Redis client: RQ needs raw bytes, the app's client decodes)."""
    cfg = current_app.config
    connection = current_app.extensions.get("portal.rq_redis")
    if connection is None:
        connection = redis.Redis.from_url(cfg["RQ_REDIS_URL"] or cfg["REDIS_URL"])
        current_app.extensions["portal.rq_redis"] = connection
    return Queue(f"{cfg['PORTAL_REDIS_PREFIX']}-jobs", connection=connection)


def create(kind, tenant_id, steps, created_by, params=None):
    """A queued job record (added to the session; the caller commits, then enqueues)."""
    job = Job(kind=kind, tenant_id=tenant_id, state="queued", created_by=created_by, params=params or {},
              steps=[{"name": name, "state": "pending"} for name in steps], log=[], result={})
    db.session.add(job)
    db.session.flush()
    return job


def enqueue(job):
    """Hand a committed job to the workers."""
    queue().enqueue("portal.lifecycle.dispatch.execute", str(job.id), job_timeout=current_app.config["JOB_TIMEOUT"])
    return job


def enqueue_at(job, when):
    """Hand a committed job to the workers' scheduler, to run at `when`."""
    queue().enqueue_at(when, "portal.lifecycle.dispatch.execute", str(job.id),
                       job_timeout=current_app.config["JOB_TIMEOUT"])
    return job


def get(job_id):
    return db.session.get(Job, job_id)


def get_job(raw_id):
    """The job of an id from outside (a URL); NotFound otherwise."""
    return registry_row(Job, raw_id)


def latest_for_tenant(tenant_id, exclude=None):
    """The tenant's latest job (but `exclude`, a job the page shows otherwise)."""
    query = select(Job).where(Job.tenant_id == tenant_id)
    if exclude is not None:
        query = query.where(Job.id != exclude.id)
    return db.session.execute(query.order_by(Job.created_at.desc()).limit(1)).scalar_one_or_none()


def scheduled_purge(tenant_id):
    """The purge an archived tenant's retention scheduled (queued for its end), if any; a
    purge staff asked for now (params.now) is work under way, not this."""
    jobs = db.session.execute(
        select(Job).where(Job.tenant_id == tenant_id, Job.kind == "purge", Job.state == "queued")
        .order_by(Job.created_at.desc())
    ).scalars().all()
    return next((job for job in jobs if not (job.params or {}).get("now")), None)


def latest_export(tenant_id, kind="export"):
    """The tenant's latest succeeded job of `kind` whose export file is still there."""
    jobs = db.session.execute(
        select(Job).where(Job.tenant_id == tenant_id, Job.kind == kind, Job.state == "succeeded")
        .order_by(Job.created_at.desc()).limit(1)
    ).scalars().all()
    return next((job for job in jobs if (job.result or {}).get("path") and os.path.exists(job.result["path"])), None)


def recent_of_kind(kind, limit=10):
    return db.session.execute(select(Job).where(Job.kind == kind).order_by(Job.created_at.desc())
                              .limit(limit)).scalars().all()


def recent(limit=50):
    return db.session.execute(select(Job).order_by(Job.created_at.desc()).limit(limit)).scalars().all()


def shown_state(job):
    """The state a page shows: a `running` job whose worker stopped beating is
    `interrupted` (read, not written: the next worker to start, or a retry, records it)."""
    if job.state == "running" and job.heartbeat_at is not None:
        stale = timedelta(seconds=current_app.config["JOB_STALE_SECONDS"])
        if job.heartbeat_at < _now() - stale:
            return "interrupted"
    return job.state


def mark_stale_interrupted():
    """Running jobs whose worker stopped beating are interrupted; returns how many."""
    stale = timedelta(seconds=current_app.config["JOB_STALE_SECONDS"])
    result = db.session.execute(
        update(Job).where(Job.state == "running", Job.heartbeat_at < _now() - stale)
        .values(state="interrupted", finished_at=_now(), error="the worker stopped while running this job")
    )
    db.session.commit()
    return result.rowcount


class Progress:
    """What a running job reports: steps starting and ending, percent, log lines.
    Every report is committed at once, so the pages see it."""

    def __init__(self, job, echo=None):
        self.job = job
        self.echo = echo  # also told every line (the CLI prints them)

    def _save(self):
        self.job.heartbeat_at = _now()
        db.session.commit()

    def start(self):
        self.job.state, self.job.started_at, self.job.error = "running", _now(), None
        self.job.finished_at = None
        self.job.steps = [dict(step, state="pending") for step in self.job.steps]
        self.note("started")

    def step(self, name, state):
        steps = [dict(s) for s in self.job.steps]
        for step in steps:
            if step["name"] == name:
                step["state"] = state
        self.job.steps = steps
        done = sum(1 for s in steps if s["state"] in ("done", "skipped"))
        self.job.percent = round(100 * done / max(1, len(steps)))
        self.note(f"{name}: {state}")

    def fraction(self, name, fraction):
        """Progress inside a long step (an export of many rows)."""
        steps = self.job.steps
        done = sum(1 for s in steps if s["state"] in ("done", "skipped"))
        self.job.percent = min(99, round(100 * (done + fraction) / max(1, len(steps))))
        self._save()

    def note(self, message):
        self.job.log = self.job.log + [{"at": _now().strftime("%H:%M:%S"), "message": message}]
        self._save()
        if self.echo is not None:
            self.echo(f"  {message}")

    def finish(self, state, error=None, **result):
        self.job.state, self.job.error, self.job.finished_at = state, error, _now()
        if state == "succeeded":
            self.job.percent = 100
        self.job.result = {**self.job.result, **result}
        self.note(f"{state}" + (f": {error}" if error else ""))


class Heartbeat(threading.Thread):
    """Beats for a running job on a connection of its own, so a long step is not taken
    for a dead worker; when the worker dies, the beats stop."""

    def __init__(self, job_id):
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.job_id, self.engine = job_id, db.engine
        self.interval = current_app.config["JOB_HEARTBEAT_SECONDS"]
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(self.interval):
            try:
                with self.engine.begin() as conn:
                    conn.execute(update(Job).where(Job.id == self.job_id, Job.state == "running")
                                 .values(heartbeat_at=_now()))
            except Exception as exc:  # a missed beat is not a failure of the job
                log.warning("heartbeat of job %s failed: %s", self.job_id, exc)

    def stop(self):
        self.stopped.set()


def run(job, handler, echo=None):
    """Run `job` with `handler(job, progress)` here and now (what a worker does), with
    its tenant bound (`tenant_context`: logs and tenant sessions know it); a handler's
    unexpected error fails the job with its reason."""
    progress = Progress(job, echo)
    progress.start()
    heartbeat = Heartbeat(job.id)
    heartbeat.start()
    tenant = db.session.get(Tenant, job.tenant_id) if job.tenant_id else None
    try:
        with tenant_context(TenantRef.of(tenant) if tenant is not None else None):
            handler(job, progress)
    except Exception as exc:
        log.exception("job %s (%s) failed", job.id, job.kind)
        db.session.rollback()
        job = db.session.get(Job, job.id)
        message = str(getattr(exc, "orig", exc)).strip()
        Progress(job, echo).finish("failed", error=message.splitlines()[0] if message else type(exc).__name__)
    finally:
        heartbeat.stop()
    return job


_worker_app = {}


def in_app_override(app):
    """The worker's app, made once by the worker process."""
    _worker_app["app"] = app


def in_app(function, *args):
    """Run `function` in the current app context, or in the worker's app."""
    if has_app_context():
        return function(*args)
    with _worker_app["app"].app_context():
        return function(*args)
