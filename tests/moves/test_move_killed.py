"""A worker killed with SIGKILL in the middle of a move — while copying, and while the
tenant's writes are frozen — leaves nothing for good: the next worker to start rolls the
move back, and the tenant works on its source again, its rows as they were."""
import subprocess
import time

import pytest
from sqlalchemy import select

from portal import create_app
from portal.extensions import db
from portal.lifecycle import moves
from portal.models import Job, TenantMove
from portal.services import jobqueue
from portal.tenancy.context import TenantRef
from portal.tenancy.data import Order
from portal.tenancy.placement import tenant_transaction
from tests.conftest import FreshContextClient, app_config
from tests.moves.conftest import Made, catalogs, contents
from tests.workers import kill_worker, start_worker, stop_worker

STALE_SECONDS = 2


@pytest.fixture()
def killing_app(app, servers, second_server, moving_app):
    live = create_app(app_config(servers, JOB_STALE_SECONDS=STALE_SECONDS, JOB_HEARTBEAT_SECONDS=1,
                                 PORTAL_REDIS_PREFIX=f"{servers.redis_prefix}mvkill"))
    live.test_client_class = FreshContextClient
    yield live
    with live.app_context():
        db.engine.dispose()


def _wait(predicate, seconds, what, worker=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        db.session.expire_all()
        if predicate():
            return
        if worker is not None and worker.poll() is not None:
            pytest.fail(f"the worker exited before {what}: {worker.stderr.read().decode(errors='replace')[-2000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize("stall, state", [("catch-up", "catching_up"), ("freeze", "frozen")])
def test_a_killed_worker_s_move_is_rolled_back_by_the_next(killing_app, stall, state):
    made = Made(killing_app)
    with killing_app.app_context():
        before_catalogs = catalogs(killing_app)
        try:
            tenant = made.tenant("pool")
            before = contents(tenant)
            row, job = moves.request_move(tenant, "silo", None, ("system", None, "test"))
            move_id, job_id = row.id, job.id
            jobqueue.enqueue(job)
            worker = start_worker(killing_app, PORTAL_STALL_STEP=f"{stall}:60")
            _wait(lambda: db.session.get(TenantMove, move_id).state == state, 30, f"the move to reach {state}",
                  worker)
            time.sleep(0.5)
            kill_worker(worker)  # SIGKILL: nothing runs on its way out
            if stall == "freeze":  # frozen: the tenant's writes are refused until the move is rolled back
                with pytest.raises(Exception, match="tenant writes are refused"):
                    with tenant_transaction(TenantRef.of(tenant)) as session:
                        session.add(Order(tenant_id=tenant.id, number=500, customer="x", amount_cents=1,
                                          status="open"))
            time.sleep(STALE_SECONDS + 1)
            burst = start_worker(killing_app, burst=True)  # a worker starting rolls it back
            try:
                burst.wait(timeout=60)
            except subprocess.TimeoutExpired:
                kill_worker(burst)
                pytest.fail("the burst worker did not finish")
            db.session.expire_all()
            row = db.session.get(TenantMove, move_id)
            assert row.state == "failed" and "worker running it stopped" in row.error
            assert db.session.get(Job, job_id).state == "failed"
            db.session.refresh(tenant)
            assert tenant.tier == "pool" and contents(tenant) == before
            with tenant_transaction(TenantRef.of(tenant)) as session:  # writes work again
                session.add(Order(tenant_id=tenant.id, number=501, customer="y", amount_cents=1, status="open"))
            assert db.session.execute(select(TenantMove).where(TenantMove.tenant_id == tenant.id,
                                                               TenantMove.state == "switched")).first() is None
        finally:
            db.session.remove()
            for process in locals().get("worker"), locals().get("burst"):
                if process is not None:
                    stop_worker(process)
            made.remove()
    with killing_app.app_context():
        assert catalogs(killing_app) == before_catalogs
