"""API tokens: scopes, revocation, expiry, the tokens page, and a token that may do only
what its maker may, checked at every request."""
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from portal.auth.principals import TenantPrincipal
from portal.services.errors import Refused
from portal.tenancy.context import tenant_context
from portal.tenancy.data import ApiToken
from portal.tenancy.placement import tenant_session, tenant_transaction
from portal.tokens import services as tokens
from tests.factories import auth, make_token

ALL = list(tokens.SCOPES)


def principal(tenant, user):
    with tenant_session(tenant) as session:
        return TenantPrincipal.of(user, session)


def _tokens():
    """The current tenant's token rows, newest first."""
    with tenant_session() as session:
        return session.execute(select(ApiToken).order_by(ApiToken.created_at.desc())).scalars().all()


def test_scopes_revocation_expiry_and_missing_tokens(client, factory, a_and_b):
    a = a_and_b[0]
    admin = factory.admin(a)
    reader = make_token(a, admin, scopes=["orders:read"])
    assert client.get("/api/v1/orders", headers=auth(reader)).status_code == 200
    refused = client.post("/api/v1/orders", json={"customer": "X", "amount_cents": 1}, headers=auth(reader))
    assert refused.status_code == 403 and "orders:write" in refused.json["error"]["message"]
    assert client.get("/api/v1/users", headers=auth(reader)).status_code == 403
    with tenant_context(a):
        row = [t for t in _tokens() if "orders:read" == ",".join(t.scopes)][0]
        tokens.revoke(row.id, principal(a, admin))
    assert client.get("/api/v1/orders", headers=auth(reader)).status_code == 401  # at once
    short = make_token(a, admin, days=1)
    with tenant_transaction(a) as session:
        session.execute(update(ApiToken).values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert client.get("/api/v1/me", headers=auth(short)).status_code == 401
    assert client.get(f"/t/{a.slug}/api/v1/me").status_code == 401
    forged = f"tp_{a.id.hex}_{'x' * 43}"
    assert client.get("/api/v1/me", headers=auth(forged)).status_code == 401


def test_bad_token_input(client, factory, a_and_b):
    a = a_and_b[0]
    admin = principal(a, factory.admin(a))
    with tenant_context(a):
        for name, scopes, days, message in [("", ALL, None, "name"), ("x", [], None, "at least one"),
                                            ("x", ["root"], None, "No such scope"), ("x", ALL, 0, "1 to 365")]:
            with pytest.raises(Exception, match=message):
                tokens.create(name, scopes, days, admin)



def test_a_token_may_do_only_what_its_maker_may(factory):
    tenant = factory.tenant(plan="professional")
    member = principal(tenant, factory.user(tenant, role="member"))  # orders create/update, not delete
    factory.role(tenant, "token-maker", {"tokens.create", "orders.view"})
    maker = principal(tenant, factory.user(tenant, role="token-maker"))
    with tenant_context(tenant):
        for actor, scopes in ((member, ["orders:write"]), (maker, ["events:write"]), (maker, ["users:read"])):
            with pytest.raises(Refused, match=f"cannot grant {scopes[0]}"):
                tokens.create("x", scopes, None, actor)
        assert _tokens() == []
        assert tokens.create("reader", ["orders:read"], None, maker)[0].scopes == ["orders:read"]


def test_token_pages_show_the_secret_once_and_revoke(client, factory):
    from tests.factories import csrf_token, sign_in_tenant

    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    page = client.get(f"/t/{tenant.slug}/tokens")
    made = client.post(f"/t/{tenant.slug}/tokens", data={
        "name": "deploy bot", "scopes": ["orders:read", "events:write"], "days": "30",
        "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert made.status_code == 302  # redirect after the POST; the next page shows the token once
    token = client.get(made.headers["Location"]).get_data(as_text=True).split('id="api-token">')[1].split("<")[0]
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 200
    listing = client.get(f"/t/{tenant.slug}/tokens").get_data(as_text=True)
    assert "deploy bot" in listing and token not in listing  # shown once
    bad = client.post(f"/t/{tenant.slug}/tokens", data={
        "name": "", "scopes": ["orders:read"], "csrf_token": csrf_token(listing)})
    assert bad.status_code == 400
    with tenant_context(tenant):
        token_id = _tokens()[0].id
    assert client.post(f"/t/{tenant.slug}/tokens/{token_id}/revoke",
                       data={"csrf_token": csrf_token(listing)}).status_code == 302
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 401
    other = factory.tenant()
    assert client.post(f"/t/{tenant.slug}/tokens/{uuid.uuid4()}/revoke",
                       data={"csrf_token": csrf_token(listing)}).status_code == 404
    assert other


@pytest.mark.parametrize("days", ["abc", "0", "366", "1.5", "-1"])
def test_token_days_get_one_precise_message(client, factory, days):
    # Issue 14, item 11: "abc" showed "Not a valid integer value." and "Number must be between 1 and 365.".
    from tests.factories import csrf_token, sign_in_tenant

    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    page = client.get(f"/t/{tenant.slug}/tokens")
    response = client.post(f"/t/{tenant.slug}/tokens", data={
        "name": "deploy bot", "scopes": ["orders:read"], "days": days,
        "csrf_token": csrf_token(page.get_data(as_text=True))})
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.findall(r'<p class="error" id="days-error">(.*?)</p>', body) == [
        "Enter a whole number of days from 1 to 365, or leave it blank."]
    assert 'value="deploy bot"' in body
    with tenant_context(tenant):
        assert _tokens() == []


# A token is re-checked against its maker on every request (docs/api.md).

WRITE = ("post", "/api/v1/orders", {"customer": "X", "amount_cents": 1})


def _set_user(tenant, user, **values):
    """Change (or, with remove=True, delete) a tenant user behind the API's back."""
    with tenant_transaction(tenant) as session:
        row = session.get(type(user), (tenant.id, user.id))
        if values.pop("remove", False):
            session.delete(row)
        for name, value in values.items():
            setattr(row, name, value)


def test_the_maker_is_stored(factory):
    tenant = factory.tenant(plan="professional")
    admin = factory.admin(tenant)
    make_token(tenant, admin)
    with tenant_context(tenant):
        assert [t.created_by_id for t in _tokens()] == [admin.id]


def test_a_demoted_maker_takes_the_scopes_its_role_lost(client, factory):
    tenant = factory.tenant(plan="professional")
    factory.admin(tenant)  # the tenant keeps an admin
    maker = factory.admin(tenant)
    token = make_token(tenant, maker)
    assert client.post("/api/v1/orders", json=WRITE[2], headers=auth(token)).status_code == 201
    _set_user(tenant, maker, role="viewer")  # orders.view, users.view; no orders.create, no analytics.create
    refused = client.post("/api/v1/orders", json=WRITE[2], headers=auth(token))
    assert refused.status_code == 403
    assert refused.json["error"]["message"].startswith("This token's maker's role no longer allows orders:write")
    events = client.post("/api/v1/events", json={"events": [{"name": "x"}]}, headers=auth(token))
    assert events.status_code == 403 and "no longer allows events:write" in events.json["error"]["message"]
    assert client.get("/api/v1/orders", headers=auth(token)).status_code == 200
    assert client.get("/api/v1/users", headers=auth(token)).status_code == 200
    me = client.get("/api/v1/me", headers=auth(token)).json["token"]
    assert me["scopes"] == sorted(ALL) and me["effective_scopes"] == ["orders:read", "users:read"]
    # A scope the token never had is still "lacks", not "no longer allows".
    reader = make_token(tenant, factory.admin(tenant), scopes=["orders:read"])
    assert "lacks the scope orders:write" in client.post(
        "/api/v1/orders", json=WRITE[2], headers=auth(reader)).json["error"]["message"]
    # The role given back: the scopes work again (nothing was revoked).
    _set_user(tenant, maker, role="admin")
    assert client.post("/api/v1/orders", json=WRITE[2], headers=auth(token)).status_code == 201


def test_a_custom_role_losing_a_permission_takes_the_scope(client, factory):
    tenant = factory.tenant(plan="professional")
    factory.role(tenant, "bot-keeper", {"tokens.create", "orders.view", "analytics.create"})
    maker = factory.user(tenant, role="bot-keeper")
    token = make_token(tenant, maker, scopes=["orders:read", "events:write"])
    assert client.post("/api/v1/events", json={"events": [{"name": "x"}]}, headers=auth(token)).status_code == 202
    from portal.tenancy.data import TenantRole
    with tenant_transaction(tenant) as session:
        session.get(TenantRole, (tenant.id, "bot-keeper")).permissions = ["orders.view", "tokens.create"]
    refused = client.post("/api/v1/events", json={"events": [{"name": "x"}]}, headers=auth(token))
    assert refused.status_code == 403 and "no longer allows events:write" in refused.json["error"]["message"]
    assert client.get("/api/v1/orders", headers=auth(token)).status_code == 200


@pytest.mark.parametrize("change", [{"is_active": False}, {"remove": True}], ids=["disabled", "removed"])
def test_a_token_of_a_disabled_or_removed_maker_is_refused(client, factory, change):
    tenant = factory.tenant(plan="professional")
    factory.admin(tenant)
    maker = factory.admin(tenant)
    token = make_token(tenant, maker)
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 200
    _set_user(tenant, maker, **change)
    for method, path, body in [("get", "/api/v1/me", None), ("get", "/api/v1/orders", None), WRITE]:
        response = getattr(client, method)(path, json=body, headers=auth(token))
        assert response.status_code == 401, (path, response.status_code)
        assert response.json["error"]["message"] == "This token's maker is no longer an active user of the tenant."
    if "is_active" in change:  # enabled again: the token works again
        _set_user(tenant, maker, is_active=True)
        assert client.get("/api/v1/me", headers=auth(token)).status_code == 200


def test_a_token_with_no_maker_on_record_is_refused(client, factory):
    tenant = factory.tenant(plan="professional")
    token = make_token(tenant, factory.admin(tenant))
    with tenant_transaction(tenant) as session:  # as migration t0004 leaves a token whose maker it could not find
        session.execute(update(ApiToken).values(created_by_id=None))
    refused = client.get("/api/v1/me", headers=auth(token))
    assert refused.status_code == 401 and "no longer an active user" in refused.json["error"]["message"]


def test_a_maker_in_another_tenant_with_the_same_id_does_not_count(client, factory):
    """The maker is looked up in the token's tenant only (RLS and the join on tenant_id)."""
    a, b = factory.tenant(plan="professional"), factory.tenant(plan="professional")
    factory.admin(a)
    maker = factory.admin(a)
    token = make_token(a, maker)
    _set_user(a, maker, remove=True)
    with tenant_transaction(b) as session:  # a user of B with the removed maker's id
        session.add(type(maker)(tenant_id=b.id, id=maker.id, email="twin@b.example", role="admin"))
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 401


def test_the_tokens_page_says_what_a_token_lost(client, factory):
    from tests.factories import sign_in_tenant

    tenant = factory.tenant(plan="professional")
    admin = factory.admin(tenant)
    demoted, gone = factory.admin(tenant), factory.admin(tenant)
    make_token(tenant, demoted, name="demoted bot")
    make_token(tenant, gone, scopes=["orders:read"], name="orphan bot")
    make_token(tenant, admin, name="fine bot")
    _set_user(tenant, demoted, role="member")  # keeps orders.view, users.view; loses delete and events
    _set_user(tenant, gone, is_active=False)
    sign_in_tenant(client, tenant, admin)
    page = client.get(f"/t/{tenant.slug}/tokens").get_data(as_text=True)
    rows = {name: page.split(name)[1].split("</tr>")[0] for name in ("demoted bot", "orphan bot", "fine bot")}
    assert "no longer allows events:write, orders:write" in rows["demoted bot"]
    assert "maker is no longer an active user" in rows["orphan bot"]
    assert "no longer" not in rows["fine bot"] and "active" in rows["fine bot"]


def test_the_maker_check_costs_no_extra_query_for_a_builtin_role(factory, conn):
    """Token and maker come in one query; only a custom role reads its permissions."""
    from sqlalchemy import event

    tenant = factory.tenant(plan="professional")
    factory.role(tenant, "bot-keeper", {"tokens.create", "orders.view"})
    made = {"builtin": make_token(tenant, factory.admin(tenant), name="builtin"),
            "custom": make_token(tenant, factory.user(tenant, role="bot-keeper"), scopes=["orders:read"],
                                 name="custom")}
    statements = []

    def count(conn_, cursor, statement, *args):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            statements.append(statement)

    event.listen(conn, "before_cursor_execute", count)
    try:
        for kind, expected in (("builtin", 1), ("custom", 2)):
            statements.clear()
            with tenant_context(tenant):
                assert tokens.authenticate(made[kind]) is not None
            assert len(statements) == expected, (kind, statements)
    finally:
        event.remove(conn, "before_cursor_execute", count)
