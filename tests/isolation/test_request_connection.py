"""A request's tenant sessions share one connection to its tenant's placement, one session
at a time (portal/tenancy/placement.py, RequestConnection): one checkout a page, not one a
session; and nothing of it reaches another tenant, a nested transaction or a closed session.

(The pool tier's sessions are bound to the test's own connection here: the bridge and silo
tiers take theirs from real pools, so they are the ones counted.)"""
from contextlib import contextmanager
from dataclasses import replace

import flask
import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import OperationalError, UnboundExecutionError
from sqlalchemy.pool import Pool

from portal.lifecycle import fences
from portal.metrics import CountingRedis, SentCommand
from portal.plans import services as plan_services
from portal.services.keys import frozen_key
from portal.tenancy import placement
from portal.tenancy.context import tenant_context
from portal.tenancy.data import Order
from portal.tenancy.placement import RequestConnection, tenant_session, tenant_transaction
from portal.tenants.services import get_tenant
from tests.factories import csrf_token, sign_in_tenant
from tests.quotas.conftest import STAFF_ACTOR, fresh_minute


class PoolCounts:
    """Checkouts and checkins of every pool while it is on."""

    def __init__(self):
        self.out = self.back = 0

    def _out(self, *args):
        self.out += 1

    def _back(self, *args):
        self.back += 1

    def __enter__(self):
        event.listen(Pool, "checkout", self._out)
        event.listen(Pool, "checkin", self._back)
        return self

    def __exit__(self, *exc):
        event.remove(Pool, "checkout", self._out)
        event.remove(Pool, "checkin", self._back)


@pytest.mark.parametrize("tier, placement", [("bridge", None), ("silo", "local")])
def test_a_signed_in_page_takes_one_connection_and_gives_it_back(client, factory, make_tiered, tier, placement):
    tenant = make_tiered(tier, placement)
    factory.order(tenant, number=7, customer="Counted Customer")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    client.get(f"/t/{tenant.slug}/orders")  # (the silo engine made, its pool warm)
    with PoolCounts() as counts:
        page = client.get(f"/t/{tenant.slug}/orders")
    assert page.status_code == 200 and "Counted Customer" in page.get_data(as_text=True)
    # the user loader's session and the view's: one checkout (it was two), returned at the end
    assert (counts.out, counts.back) == (1, 1)


@contextmanager
def in_request_of(app, tenant):
    """A request of `tenant`'s, as the resolver leaves it bound."""
    with app.test_request_context(f"/t/{tenant.slug}/orders"), tenant_context(tenant):
        yield


def _ids(session):
    return {row.number for row in session.execute(select(Order.number))}


def test_only_the_requests_own_tenant_borrows_it(app, factory, make_tiered):
    a, b = make_tiered("bridge"), make_tiered("bridge")
    factory.order(a, number=1)
    factory.order(b, number=2)
    with in_request_of(app, a):
        with tenant_session() as first:
            assert _ids(first) == {1}
            lent = first.get_bind()
        with tenant_session(b) as other:  # another tenant: a connection of its own
            assert other.get_bind() is not lent
            assert _ids(other) == {2}
        moved = replace(a, placement_version=a.placement_version + 1)  # as a move's switch leaves it
        with tenant_session(moved) as elsewhere:
            assert elsewhere.get_bind() is not lent
        with tenant_session(replace(a)) as second:  # a ref of its own, equal: the same connection
            assert second.get_bind() is lent
            assert _ids(second) == {1}
            assert second.execute(text("select current_setting('app.tenant_id')")).scalar() == str(a.id)


def test_a_nested_transaction_commits_on_its_own(app, factory, make_tiered):
    tenant = make_tiered("bridge")
    with in_request_of(app, tenant):
        with tenant_session() as outer:
            assert _ids(outer) == set()  # the outer session holds the request's connection
            with tenant_transaction() as inner:  # so this one takes its own, and commits
                assert inner.get_bind() is not outer.get_bind()
                inner.add(Order(tenant_id=tenant.id, number=5, customer="Nested", amount_cents=1,
                                status="open"))
        with tenant_session() as after:  # the outer one rolled back: the write stands
            assert _ids(after) == {5}


def test_a_connection_left_in_a_transaction_is_not_lent_again(app, make_tiered):
    tenant = make_tiered("bridge")
    with in_request_of(app, tenant):
        with tenant_session() as first:
            first.execute(text("select 1"))
            lent = first.get_bind()
        lent.begin()  # (as raw use of it might leave it)
        with tenant_session() as second:  # would have joined that transaction, its commit a no-op
            assert second.get_bind() is not lent
        assert lent.closed  # given back, its transaction rolled back


def test_a_closed_session_cannot_use_the_connection_again(app, make_tiered):
    tenant = make_tiered("bridge")
    with in_request_of(app, tenant):
        with tenant_session() as first:
            first.execute(text("select 1"))
        with tenant_session() as second:
            second.execute(text("select 1"))
            with pytest.raises(UnboundExecutionError):  # it would have joined `second`'s transaction
                first.execute(text("select 1"))


class Steps:
    """The order of the limits step's Redis script (sent, its reply read) and of every pool
    checkout, while it is on."""

    def __init__(self, monkeypatch):
        self.seen, self.monkeypatch = [], monkeypatch

    def __enter__(self):
        sent, reply = SentCommand.__init__, SentCommand.reply
        event.listen(Engine, "before_cursor_execute", self._statement)

        def sending(command, *args):
            self.seen.append("sent")
            sent(command, *args)

        def replying(command):
            self.seen.append("reply")
            return reply(command)

        self.monkeypatch.setattr(SentCommand, "__init__", sending)
        self.monkeypatch.setattr(SentCommand, "reply", replying)
        event.listen(Pool, "checkout", self._checkout)
        return self

    def _checkout(self, *args):
        self.seen.append("checkout")

    def _statement(self, *args):
        if "statement" not in self.seen:  # (the first of the request's statements)
            self.seen.append("statement")

    def __exit__(self, *exc):
        event.remove(Pool, "checkout", self._checkout)
        event.remove(Engine, "before_cursor_execute", self._statement)


def early_send(app):
    """Whether the app's Redis client sends a command before reading its reply (a single
    server's does; a Redis Cluster's asks in one call)."""
    return isinstance(app.extensions["portal.redis"], CountingRedis)


@pytest.mark.parametrize("tier, placement", [("bridge", None), ("silo", "local")])
def test_a_signed_in_pages_checkout_overlaps_the_rate_limit_script(app, client, factory, make_tiered,
                                                                   monkeypatch, tier, placement):
    tenant = make_tiered(tier, placement)
    factory.order(tenant, number=3, customer="Overlapped Customer")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    client.get(f"/t/{tenant.slug}/orders")  # (the silo engine made, its pool warm)
    with Steps(monkeypatch) as steps, PoolCounts() as counts:
        page = client.get(f"/t/{tenant.slug}/orders")
    assert page.status_code == 200 and "Overlapped Customer" in page.get_data(as_text=True)
    assert (counts.out, counts.back) == (1, 1)  # checked out early, then lent to both sessions
    # the script is on its way while the connection is checked out (its pre-ping), and
    # its reply is read before the request runs any statement on it
    assert steps.seen == (["sent", "checkout", "reply", "statement"] if early_send(app) else ["checkout", "statement"])


def test_an_anonymous_page_checks_nothing_out_early(app, client, factory, make_tiered, monkeypatch):
    tenant = make_tiered("bridge")
    opened = []
    monkeypatch.setattr(RequestConnection, "open_early", staticmethod(opened.append))
    assert client.get(f"/t/{tenant.slug}/login").status_code == 200
    assert opened == []  # no one to load: nothing of the tenant's is read before the page's own
    sign_in_tenant(client, tenant, factory.admin(tenant))
    assert client.get(f"/t/{tenant.slug}/orders").status_code == 200
    assert [ref.id for ref in opened] == [tenant.id]  # signed in: the user loader reads the tenant's database


def test_a_connection_that_cannot_be_opened_early_is_left_to_the_session(app, client, factory, make_tiered,
                                                                        monkeypatch):
    tenant = make_tiered("bridge")
    factory.order(tenant, number=4, customer="Later Customer")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    held, calls = RequestConnection._held, []

    def fails_first(*args):
        calls.append(args)
        if len(calls) == 1:  # the early opening: the server is not there (for now)
            raise OperationalError("select 1", {}, Exception("connection refused"))
        return held(*args)

    monkeypatch.setattr(RequestConnection, "_held", staticmethod(fails_first))
    page = client.get(f"/t/{tenant.slug}/orders")
    assert page.status_code == 200 and "Later Customer" in page.get_data(as_text=True)
    assert len(calls) > 1  # the user loader's session opened it, as before


def test_a_request_the_limits_step_refuses_takes_one_connection_and_gives_it_back(app, client, factory,
                                                                                  make_tiered):
    tenant = make_tiered("bridge")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    plan_services.set_override(get_tenant(tenant.id), "limit:requests_per_minute", "5", None, "test", STAFF_ACTOR)
    fresh_minute()
    while client.get(f"/t/{tenant.slug}/orders").status_code != 429:  # (the limits step's refusal)
        pass
    app.extensions["portal.over_limit"].lift(tenant.id)  # so the next one is refused there again, not earlier
    with PoolCounts() as counts:
        refused = client.get(f"/t/{tenant.slug}/orders")
    assert refused.status_code == 429 and "5 requests a minute" in refused.get_data(as_text=True)
    # checked out while Redis answered, used by the refusal page's layout (who is signed
    # in), given back at the end: one connection, as for a page served
    assert (counts.out, counts.back) == (1, 1)


def test_a_write_held_by_a_moves_freeze_holds_no_connection(app, client, factory, make_tiered, monkeypatch,
                                                            redis_client):
    tenant = make_tiered("bridge")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    token = csrf_token(client.get(f"/t/{tenant.slug}/orders/new").get_data(as_text=True))
    held = []

    def waits(tenant_id, hold_ms):
        held.append(placement._LEASE in flask.g)  # what the request holds while it waits
        return None

    monkeypatch.setattr(fences, "wait_while_frozen", waits)
    redis_client.set(frozen_key(tenant.id), "1", px=30_000)
    try:
        made = client.post(f"/t/{tenant.slug}/orders/new", data={
            "csrf_token": token, "customer": "Held Customer", "amount": "1.00", "status": "open"})
    finally:
        redis_client.delete(frozen_key(tenant.id))
    assert held == [False]  # (the tenant's reads go on: its connections are not taken by held writes)
    assert made.status_code in (200, 302)


def test_the_early_checkout_makes_no_silo_engine(app, client, factory, make_tiered, monkeypatch):
    """The ref may be stale when the early checkout runs (the reply says where the tenant
    is): an engine made for it could close another tenant's (the engines are bounded)."""
    tenant = make_tiered("silo", "local")
    factory.order(tenant, number=8, customer="Engine Customer")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    client.get(f"/t/{tenant.slug}/orders")
    engines = app.extensions["portal.silo_engines"]
    engines.forget(tenant.id)  # (closed, as when the bounded registry made room)
    held, binds = RequestConnection._held, []

    def seen(ref, bind):
        binds.append(bind)
        return held(ref, bind)

    monkeypatch.setattr(RequestConnection, "_held", staticmethod(seen))
    page = client.get(f"/t/{tenant.slug}/orders")
    assert page.status_code == 200 and "Engine Customer" in page.get_data(as_text=True)
    assert binds[0] is None  # early: no engine open, none made
    assert binds[1] is not None  # the user loader's session made it, after the reply
