"""A real worker process killed in the middle of a provisioning job (issue 4): the job is
seen as `interrupted` once its heartbeat stops, and a retry finishes it.

The worker is another process, so everything here is committed for real (no `conn`, no
`factory`): the test makes its own app on the test database and removes what it made.
"""
import subprocess
import time
import uuid

import pytest
from sqlalchemy import delete, select

from portal import create_app
from portal.auth.services import create_staff_user
from portal.extensions import db
from portal.lifecycle import dispatch, provisioning
from portal.lifecycle.storage import drop_storage
from portal.models import Job, Tenant
from portal.services import jobqueue
from portal.tenancy.lookup import forget_tenant
from portal.tenancy.names import role_name, schema_name
from tests.conftest import FreshContextClient, app_config
from tests.factories import PASSWORD, sign_in_staff, unique_slug
from tests.lifecycle.conftest import catalog
from tests.workers import kill_worker, start_worker, stop_worker

STALE_SECONDS = 2


@pytest.fixture()
def committing_app(app, servers, tmp_path):
    """A second app on the test database (`app` has migrated it) whose jobs go stale
    after 2 s without a heartbeat; its worker beats every second."""
    live = create_app(app_config(servers, JOB_STALE_SECONDS=STALE_SECONDS, JOB_HEARTBEAT_SECONDS=1,
                                 PORTAL_REDIS_PREFIX=f"{servers.redis_prefix}killed",
                                 PORTAL_EXPORT_DIR=str(tmp_path / "exports")))
    live.test_client_class = FreshContextClient
    yield live
    with live.app_context():
        db.engine.dispose()


class Workers:
    """Worker processes started by a test; `stop_all()` stops those still running."""

    def __init__(self):
        self.started = []

    def __call__(self, app, **kwargs):
        process = start_worker(app, **kwargs)
        self.started.append(process)
        return process

    def stop_all(self):
        for process in self.started:
            stop_worker(process)
            if process.stderr is not None:
                process.stderr.close()
        self.started = []


@pytest.fixture()
def workers():
    started = Workers()
    yield started
    started.stop_all()


def _fresh_job(job_id):
    db.session.expire_all()
    return db.session.get(Job, job_id)


def _wait_for(job_id, predicate, process, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = _fresh_job(job_id)
        if predicate(job):
            return job
        if process is not None and process.poll() is not None:
            pytest.fail(f"the worker exited ({process.returncode}) before {what}: "
                        f"{process.stderr.read().decode(errors='replace')[-3000:]}")
        time.sleep(0.2)
    job = _fresh_job(job_id)
    pytest.fail(f"timed out waiting for {what}: job {job.state}, steps {job.steps}")


def _steps(job):
    return {s["name"]: s["state"] for s in job.steps}


def _bridge_storage(app, tenant_id):
    roles, _, schemas = catalog(app.config["DATABASE_URL"], app.config["PORTAL_NAME_PREFIX"])
    return schema_name(tenant_id) in schemas, role_name(tenant_id) in roles


def test_a_killed_worker_leaves_the_job_interrupted_and_a_retry_finishes_it(committing_app, workers):
    app = committing_app
    slug = unique_slug("killed")
    tenant_id = None
    with app.app_context():
        try:
            tenant, job = provisioning.request_tenant(slug, "Killed Mid-Job", "professional",
                                                      f"admin@{slug}.example", tier="bridge")
            tenant_id, job_id = tenant.id, job.id
            jobqueue.enqueue(job)
            # The worker stalls a minute at "database role", with "storage" done.
            worker = workers(app, PORTAL_STALL_STEP="database role:60")
            job = _wait_for(job_id, lambda j: _steps(j).get("database role") == "running", worker, 30,
                            "the database role step to start")
            assert _steps(job)["storage"] == "done" and job.state == "running"

            # A long step is not taken for a dead worker: its heartbeat keeps the job fresh.
            time.sleep(STALE_SECONDS + 0.5)
            jobqueue.mark_stale_interrupted()
            assert _fresh_job(job_id).state == "running"

            kill_worker(worker)  # SIGKILL: no handler, no cleanup
            job = _fresh_job(job_id)
            assert job.state == "running"  # what the dead worker left behind
            assert _bridge_storage(app, tenant_id) == (True, False)  # half-made: schema, no role

            time.sleep(STALE_SECONDS + 1)
            assert jobqueue.mark_stale_interrupted() >= 1
            job = _fresh_job(job_id)
            assert job.state == "interrupted" and job.finished_at is not None
            assert "stopped" in job.error
            assert db.session.get(Tenant, tenant_id).status == "provisioning"

            # The staff page shows it interrupted, with a retry button.
            staff_email = f"killed-{uuid.uuid4().hex[:8]}@staff.example"
            staff, _ = create_staff_user(staff_email, "operator", PASSWORD)
            client = app.test_client()
            sign_in_staff(client, staff)
            panel = client.get(f"/admin/jobs/{job_id}/fragment").get_data(as_text=True)
            assert "badge-job-interrupted" in panel and f"/admin/jobs/{job_id}/retry" in panel

            dispatch.retry(job)
            assert _fresh_job(job_id).state == "queued"
            burst = workers(app, burst=True)
            try:
                burst.wait(timeout=90)
            except subprocess.TimeoutExpired:
                kill_worker(burst)
                pytest.fail("the burst worker did not finish: " + burst.stderr.read().decode(errors="replace"))
            job = _fresh_job(job_id)
            assert job.state == "succeeded", (job.error, job.steps, burst.stderr.read().decode(errors="replace"))
            assert set(_steps(job).values()) == {"done"} and job.percent == 100
            tenant = db.session.get(Tenant, tenant_id)
            assert (tenant.status, tenant.failed_step) == ("active", None)
            assert _bridge_storage(app, tenant_id) == (True, True)
        finally:
            workers.stop_all()  # before removing what a worker may still be making
            db.session.rollback()
            if tenant_id is not None:
                drop_storage(tenant_id, "bridge")
                tenant = db.session.get(Tenant, tenant_id)
                if tenant is not None:
                    forget_tenant(tenant)
                db.session.execute(delete(Job).where(Job.tenant_id == tenant_id))
                db.session.execute(delete(Tenant).where(Tenant.id == tenant_id))
                db.session.commit()
                assert _bridge_storage(app, tenant_id) == (False, False)
                assert db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).first() is None
            db.session.remove()
