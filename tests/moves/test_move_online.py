"""A move while the tenant works: a writer keeps adding orders through the API (retrying a
503 as a client would), through every phase, frozen included (its writes held for the
switch, or refused when holding is off); no write is lost or duplicated; another
tenant's reader is never refused; the switch is seen at once by a second app (another
process's view)."""
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal import create_app
from portal.analytics import queries
from portal.extensions import db
from portal.metrics import REGISTRY
from portal.models import Tenant
from portal.plans import services as plan_services
from portal.services.metering import storage_bytes
from portal.tenancy.context import TenantRef
from portal.tenancy.data import KEPT_TABLES, Event, EventActiveDay, Order, TenantUser
from portal.tenancy.placement import tenant_session
from tests.conftest import FreshContextClient, app_config
from tests.factories import auth, make_token
from tests.moves.conftest import contents, move
from tests.moves.test_move_pairs import PLACES


class Writer(threading.Thread):
    """Adds orders with unique markers at ~`rate`/s; a 503 is retried (same marker) after
    its Retry-After, as a client would. Keeps the outcome of every attempt, and the
    longest an accepted attempt took (held by a freeze)."""

    def __init__(self, app, token, rate=100):
        super().__init__(daemon=True)
        self.client, self.token, self.pause = app.test_client(), token, 1 / rate
        self.accepted, self.refused, self.failed = [], 0, []
        self.longest_held = 0.0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            marker = f"w-{uuid.uuid4().hex[:12]}"
            while not self.stop.is_set():
                started = time.perf_counter()
                answer = self.client.post("/api/v1/orders", json={"customer": marker, "amount_cents": 1},
                                          headers=auth(self.token))
                if answer.status_code == 201:
                    self.accepted.append(marker)
                    self.longest_held = max(self.longest_held, time.perf_counter() - started)
                    break
                if answer.status_code == 503:
                    self.refused += 1
                    time.sleep(min(0.05, float(answer.headers.get("Retry-After", 1))))
                    continue
                self.failed.append((answer.status_code, answer.get_data(as_text=True)[:200]))
                break
            time.sleep(self.pause)


class Reader(threading.Thread):
    def __init__(self, app, token):
        super().__init__(daemon=True)
        self.client, self.token = app.test_client(), token
        self.ok, self.failed = 0, []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            answer = self.client.get("/api/v1/orders", headers=auth(self.token))
            if answer.status_code == 200:
                self.ok += 1
            else:
                self.failed.append(answer.status_code)
            time.sleep(0.01)


def _roomy(tenant):
    """Lift the requests a minute: the writer must not be refused for its pace."""
    plan_services.set_override(tenant, "limit:requests_per_minute", "1000000", None, "a move test",
                               ("system", None, "test"))


def admin_token(tenant):
    """An API token of `tenant`'s first admin, with every scope."""
    with tenant_session(TenantRef.of(tenant)) as session:
        admin = session.execute(select(TenantUser).where(TenantUser.role == "admin")).scalars().first()
    return make_token(TenantRef.of(tenant), admin)


def _markers(tenant):
    db.session.refresh(tenant)
    with tenant_session(TenantRef.of(tenant)) as session:
        return [c for c in session.execute(select(Order.customer)).scalars() if c.startswith("w-")]


# freeze: writes held for the switch; "freeze, no hold": refused with 503 and retried.
@pytest.mark.parametrize("stall", ["copy", "catch-up", "validate", "freeze", "freeze, no hold"])
@pytest.mark.parametrize("source, target", [("pool", "silo-second"), ("silo-second", "pool"), ("bridge", "silo-local")])
def test_writes_during_a_move_are_neither_lost_nor_doubled(moving_app, made, source, target, stall, monkeypatch):
    tenant, other = made.tenant(*PLACES[source]), made.tenant("pool")
    for t in (tenant, other):
        _roomy(t)
    tokens = {t.id: admin_token(t) for t in (tenant, other)}
    if stall == "freeze, no hold":
        monkeypatch.setitem(moving_app.config, "MOVE_HOLD_WRITES_MS", 0)
    monkeypatch.setitem(moving_app.config, "PORTAL_STALL_STEP", f"{stall.split(',')[0]}:0.6")
    writer, reader = Writer(moving_app, tokens[tenant.id]), Reader(moving_app, tokens[other.id])
    neighbour = Writer(moving_app, tokens[other.id], rate=50)  # B, on the pool, writes throughout
    holds_before = REGISTRY.get_sample_value("portal_write_held_seconds_count") or 0
    threads = (writer, reader, neighbour)
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    try:
        row, job = move(tenant, *PLACES[target])
    finally:
        time.sleep(0.3)  # writes after the switch go to the new place
        for thread in threads:
            thread.stop.set()
        for thread in threads:
            thread.join(10)
    assert job.state == "succeeded", (job.error, job.steps)
    assert writer.failed == [] and reader.failed == [], (writer.failed[:3], reader.failed[:3])
    assert len(writer.accepted) > 10 and reader.ok > 10
    if stall == "freeze":
        assert writer.longest_held >= 0.5  # a write waited for the switch, then was accepted
        assert REGISTRY.get_sample_value("portal_write_held_seconds_count") > holds_before  # and operators see it
    if stall == "freeze, no hold":
        assert writer.refused >= 1  # frozen: refused with 503, then retried
    stored = _markers(tenant)
    assert sorted(stored) == sorted(writer.accepted)  # none lost, none twice
    assert len(set(stored)) == len(stored)
    # B was never frozen nor refused, and has exactly its own writes, none of A's.
    assert neighbour.refused == 0 and neighbour.failed == [] and len(neighbour.accepted) > 5
    assert sorted(_markers(other)) == sorted(neighbour.accepted)


def test_a_second_app_sees_the_switch_at_once(moving_app, made, servers):
    """Another process (an app of its own, with its own in-process caches) has the tenant
    cached; its next request after the switch goes to the new place, not 2 s later."""
    tenant = made.tenant("pool")
    other_app = create_app(app_config(servers, PORTAL_REDIS_PREFIX=moving_app.config["PORTAL_REDIS_PREFIX"],
                                      TENANT_CACHE_LOCAL_SECONDS=3600))
    other_app.test_client_class = FreshContextClient
    token = admin_token(tenant)
    client = other_app.test_client()
    assert client.get("/api/v1/orders", headers=auth(token)).status_code == 200  # cached there: pool
    row, job = move(tenant, "bridge")
    assert job.state == "succeeded"
    db.session.refresh(tenant)
    assert storage_bytes(TenantRef.of(tenant)) == row.figures["target_bytes"]  # the new place's size, kept
    created = client.post("/api/v1/orders", json={"customer": "after the switch", "amount_cents": 5},
                          headers=auth(token))
    assert created.status_code == 201
    assert any("after the switch" in r for r in contents(tenant)["orders"])  # on the bridge, where it lives now
    with other_app.app_context():
        from portal.extensions import db as other_db
        other_db.engine.dispose()


def test_a_second_app_sees_a_suspension_and_a_plan_change_at_once(moving_app, made, servers):
    """A change of the tenant's registry row made by one process (a suspension, a plan
    change) is seen on the next request of another that has the tenant cached for an
    hour: the registry version read with the rate-limit count, not the cache's expiry."""
    from portal.lifecycle import states
    from portal.models import Plan

    tenant = made.tenant("pool")
    other_app = create_app(app_config(servers, PORTAL_REDIS_PREFIX=moving_app.config["PORTAL_REDIS_PREFIX"],
                                      TENANT_CACHE_LOCAL_SECONDS=3600, ENTITLEMENTS_CACHE_SECONDS=3600))
    other_app.test_client_class = FreshContextClient
    token, client = admin_token(tenant), other_app.test_client()

    def api_limit():
        answer = client.get("/api/v1/orders", headers=auth(token))
        return answer.status_code, answer.headers.get("X-RateLimit-Limit")

    try:
        assert api_limit() == (200, str(db.session.get(Plan, "enterprise").api_calls_per_day))  # cached there
        states.suspend(tenant, "unpaid", ("system", None, "test"))
        refused = client.get("/api/v1/orders", headers=auth(token))
        assert refused.status_code == 403 and "suspended" in refused.get_json()["error"]["message"]
        states.resume(tenant, "paid", ("system", None, "test"))
        assert api_limit()[0] == 200
        plan_services.change_plan(tenant, "basic")
        assert api_limit() == (200, str(db.session.get(Plan, "basic").api_calls_per_day))
    finally:
        with other_app.app_context():
            from portal.extensions import db as other_db
            other_db.engine.dispose()


class Analyst(threading.Thread):
    """Sends an event through the API and works out the tenant's dashboard where the
    registry says it is now, over and over: what dashboards keep (a date-keyed row of
    each day, runs of days) is deleted and kept again throughout a move."""

    def __init__(self, app, token, tenant_id):
        super().__init__(daemon=True)
        self.app, self.client, self.token, self.tenant_id = app, app.test_client(), token, tenant_id
        self.sent, self.views, self.failed = 0, 0, []
        self.stop = threading.Event()

    def run(self):
        today = datetime.now(timezone.utc).date()
        with self.app.app_context():
            while not self.stop.is_set():
                answer = self.client.post("/api/v1/events", json={"events": [{"name": "seen", "user_id": "x"}]},
                                          headers=auth(self.token))
                if answer.status_code == 202:
                    self.sent += 1
                elif answer.status_code != 503:  # (frozen: refused, as any write)
                    self.failed.append((answer.status_code, answer.get_data(as_text=True)[:200]))
                try:
                    db.session.expire_all()
                    queries.dashboard(TenantRef.of(db.session.get(Tenant, self.tenant_id)),
                                      today - timedelta(days=89), today)
                    self.views += 1
                except Exception as exc:  # noqa: BLE001 - the test reports it
                    self.failed.append(repr(exc)[:200])
                finally:
                    db.session.remove()
                time.sleep(0.02)


@pytest.mark.parametrize("source, target", [("pool", "silo-second"), ("bridge", "pool")])
def test_what_dashboards_keep_moves_while_it_changes(moving_app, made, source, target, monkeypatch):
    tenant = made.tenant(*PLACES[source])
    _roomy(tenant)
    monkeypatch.setitem(moving_app.config, "PORTAL_STALL_STEP", "catch-up:0.6")
    analyst = Analyst(moving_app, admin_token(tenant), tenant.id)
    analyst.start()
    time.sleep(0.3)
    try:
        row, job = move(tenant, *PLACES[target])
    finally:
        analyst.stop.set()
        analyst.join(10)
    assert job.state == "succeeded", (job.error, job.steps)  # its checksums of every table agreed
    assert analyst.failed == [] and analyst.sent > 5 and analyst.views > 5
    # Where it is now, what was kept (copied, then caught up) is what working out gives.
    db.session.refresh(tenant)
    ref, today = TenantRef.of(tenant), datetime.now(timezone.utc).date()
    kept = queries.dashboard(ref, today - timedelta(days=89), today)
    with tenant_session(ref) as session:
        assert session.execute(select(func.count()).select_from(EventActiveDay)).scalar() > 0
        for table in KEPT_TABLES:
            session.execute(table.delete())
        session.commit()
        events = session.execute(select(func.count()).select_from(Event)).scalar()
    assert queries.dashboard(ref, today - timedelta(days=89), today) == kept
    assert kept["totals"]["events"] == events >= analyst.sent
