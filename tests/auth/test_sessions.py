"""Sessions end on the server (issue 10): a copy of a cookie taken before the session
ended is worth nothing afterwards, in both realms and at every address of a tenant."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.lifecycle import states
from portal.models import StaffSession
from portal.services import password_links, sessions
from portal.tenancy.data import TenantSession, TenantUser
from portal.tenancy.placement import tenant_session, tenant_transaction
from portal.tenants.services import get_tenant
from tests.conftest import BASE_DOMAIN
from tests.factories import csrf_token, sign_in_staff, sign_in_tenant


def _cookies(client):
    """The client's cookies, to be put back later (a stolen copy)."""
    return [(c.domain, c.key, c.value, c.path) for c in client._cookies.values()]


def _restore(client, saved):
    for domain, key, value, path in saved:
        client.set_cookie(key, value, domain=domain, path=path)


def _post(client, page, url, data=None, **kwargs):
    token = csrf_token(client.get(page, **kwargs).get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token}, **kwargs)


def _tenant_sessions(tenant, user_id=None):
    with tenant_session(tenant) as session:
        query = select(func.count()).select_from(TenantSession)
        if user_id is not None:
            query = query.where(TenantSession.user_id == user_id)
        return session.execute(query).scalar_one()


@pytest.mark.parametrize("where", ["path", "host"])
def test_a_copied_tenant_cookie_is_dead_after_sign_out(client, factory, where):
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    prefix, kwargs = (f"/t/{tenant.slug}", {}) if where == "path" else ("", {
        "base_url": f"http://{tenant.slug}.{BASE_DOMAIN}"})
    sign_in_tenant(client, tenant, admin, prefix=prefix, **kwargs)
    assert client.get(f"{prefix}/users", **kwargs).status_code == 200
    stolen = _cookies(client)
    assert _tenant_sessions(tenant, admin.id) == 1
    signed_out = _post(client, f"{prefix}/users", f"{prefix}/logout", **kwargs)
    assert signed_out.status_code == 302
    assert _tenant_sessions(tenant, admin.id) == 0
    _restore(client, stolen)
    replay = client.get(f"{prefix}/users", **kwargs)
    assert replay.status_code == 302 and "/login" in replay.headers["Location"]


def test_a_copied_staff_cookie_is_dead_after_sign_out(client, factory):
    staff = factory.staff("operator")
    sign_in_staff(client, staff)
    assert client.get("/admin/tenants").status_code == 200
    stolen = _cookies(client)
    _post(client, "/admin/tenants", "/admin/logout")
    _restore(client, stolen)
    replay = client.get("/admin/tenants")
    assert replay.status_code == 302 and "/admin/login" in replay.headers["Location"]


@pytest.mark.parametrize("action", ["reset", "disable", "remove", "demote"])
def test_an_admin_s_change_ends_every_session_of_the_user(app, client, factory, action):
    tenant = factory.tenant()
    admin, member = factory.admin(tenant), factory.user(tenant, role="member")
    victim = app.test_client()
    sign_in_tenant(victim, tenant, member)
    other_browser = app.test_client()
    sign_in_tenant(other_browser, tenant, member)
    assert _tenant_sessions(tenant, member.id) == 2
    sign_in_tenant(client, tenant, admin)
    path = {"reset": "reset", "disable": "disable", "remove": "remove", "demote": "role"}[action]
    data = {"role": "viewer"} if action == "demote" else {}
    response = _post(client, f"/t/{tenant.slug}/users/{member.id}", f"/t/{tenant.slug}/users/{member.id}/{path}", data)
    assert response.status_code == 302
    assert _tenant_sessions(tenant, member.id) == 0
    for browser in (victim, other_browser):
        answer = browser.get(f"/t/{tenant.slug}/users")
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], action
    assert client.get(f"/t/{tenant.slug}/users").status_code == 200  # the admin's own session goes on


def test_a_password_set_with_a_link_ends_every_earlier_session(app, client, factory):
    """A user who follows a set-password link (sent by an admin, say, while a stolen
    session is still open) ends every earlier sign-in; the new one goes on."""
    tenant = factory.tenant()
    user = factory.user(tenant)
    sign_in_tenant(client, tenant, user)
    with tenant_transaction(tenant) as session:
        token = password_links.open_link(session.get(TenantUser, (tenant.id, user.id)))
    owner = app.test_client()
    url = f"/t/{tenant.slug}/set-password/{token}"
    form = owner.get(url)
    assert form.status_code == 200
    answer = owner.post(url, data={"password": "a brand new passphrase", "confirm": "a brand new passphrase",
                                   "csrf_token": csrf_token(form.get_data(as_text=True))})
    assert answer.status_code == 302
    earlier = client.get(f"/t/{tenant.slug}/users")
    assert earlier.status_code == 302 and "/login" in earlier.headers["Location"]
    assert owner.get(f"/t/{tenant.slug}/users").status_code == 200
    assert _tenant_sessions(tenant, user.id) == 1


def test_a_role_change_to_as_many_rights_keeps_the_session(app, client, factory):
    tenant = factory.tenant()
    admin, viewer = factory.admin(tenant), factory.user(tenant, role="viewer")
    other = app.test_client()
    sign_in_tenant(other, tenant, viewer)
    sign_in_tenant(client, tenant, admin)
    _post(client, f"/t/{tenant.slug}/users/{viewer.id}", f"/t/{tenant.slug}/users/{viewer.id}/role", {"role": "member"})
    assert other.get(f"/t/{tenant.slug}/users").status_code == 200


def test_suspension_ends_every_session_of_the_tenant(app, client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    states.suspend(get_tenant(tenant.id), "unpaid", ("system", None, "test"))
    states.resume(get_tenant(tenant.id), "paid", ("system", None, "test"))
    answer = client.get(f"/t/{tenant.slug}/users")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_sign_in_rotates_the_csrf_secret_and_the_session_id(client, factory):
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    before = csrf_token(client.get(f"/t/{tenant.slug}/login").get_data(as_text=True))
    sign_in_tenant(client, tenant, admin)
    first = _cookies(client)
    after = csrf_token(client.get(f"/t/{tenant.slug}/users").get_data(as_text=True))
    assert before != after
    # The form token of the page before sign-in no longer works.
    stale = client.post(f"/t/{tenant.slug}/logout", data={"csrf_token": before})
    assert stale.status_code == 400
    sign_in_tenant(client, tenant, admin)  # again: another session, the first one's row stays until it ends
    assert _cookies(client) != first and _tenant_sessions(tenant, admin.id) == 2


def test_staff_sessions_idle_out_and_end_at_their_lifetime(app, client, factory, monkeypatch):
    staff = factory.staff("viewer")
    sign_in_staff(client, staff)
    assert client.get("/admin/tenants").status_code == 200
    idle = app.config["STAFF_SESSION_IDLE_MINUTES"]
    later = datetime.now(timezone.utc) + timedelta(minutes=idle + 1)
    monkeypatch.setattr("portal.services.sessions._now", lambda: later)
    assert client.get("/admin/tenants").status_code == 302
    assert db.session.execute(select(func.count()).select_from(StaffSession)
                              .where(StaffSession.staff_user_id == staff.id)).scalar_one() == 0
    monkeypatch.undo()

    # Used every few minutes, it still ends STAFF_SESSION_HOURS after sign-in.
    sign_in_staff(client, staff)
    now = datetime.now(timezone.utc)
    hours = app.config["STAFF_SESSION_HOURS"]
    for minutes in range(idle // 2, hours * 60, idle // 2):
        monkeypatch.setattr("portal.services.sessions._now", lambda m=minutes: now + timedelta(minutes=m))
        assert client.get("/admin/account/sessions").status_code == 200, minutes
    monkeypatch.setattr("portal.services.sessions._now", lambda: now + timedelta(hours=hours, minutes=1))
    assert client.get("/admin/tenants").status_code == 302


def test_staff_see_their_sessions_and_sign_out_everywhere(app, client, factory):
    staff, colleague = factory.staff("support"), factory.staff("support")
    laptop, phone, theirs = app.test_client(), app.test_client(), app.test_client()
    for browser, who in ((laptop, staff), (phone, staff), (client, staff), (theirs, colleague)):
        sign_in_staff(browser, who)
    page = client.get("/admin/account/sessions").get_data(as_text=True)
    assert page.count("<tr>") == 1 + 3 and "this browser" in page  # a header row and three sessions
    # End the phone's session from here.
    phone_hash = [row.id_hash for row in db.session.execute(
        select(StaffSession).where(StaffSession.staff_user_id == staff.id)
        .order_by(StaffSession.created_at)).scalars()][1]
    assert _post(client, "/admin/account/sessions", "/admin/account/sessions/end",
                 {"session": phone_hash}).status_code == 302
    assert phone.get("/admin/tenants").status_code == 302 and laptop.get("/admin/tenants").status_code == 200
    # Another staff member's session is not ours to end: 404, and it goes on.
    theirs_hash = db.session.execute(select(StaffSession.id_hash)
                                     .where(StaffSession.staff_user_id == colleague.id)).scalar_one()
    assert _post(client, "/admin/account/sessions", "/admin/account/sessions/end",
                 {"session": theirs_hash}).status_code == 404
    assert theirs.get("/admin/tenants").status_code == 200
    # Everywhere: the laptop and this browser too.
    done = _post(client, "/admin/account/sessions", "/admin/account/sessions/end-all")
    assert done.status_code == 302 and "/admin/login" in done.headers["Location"]
    for browser in (laptop, client):
        assert browser.get("/admin/tenants").status_code == 302
    assert theirs.get("/admin/tenants").status_code == 200


def test_a_tenant_session_past_its_end_loads_no_one(client, factory, monkeypatch):
    """The user loader's statement is made once (sessions._tenant_user_statement): its
    moment, session and user are bound afresh on every request."""
    tenant = factory.tenant()
    admin, other = factory.admin(tenant), factory.admin(tenant)
    sign_in_tenant(client, tenant, admin)
    assert client.get(f"/t/{tenant.slug}/orders").status_code == 200
    with tenant_session(tenant) as session:
        ends = session.execute(select(TenantSession.expires_at).where(TenantSession.user_id == admin.id)).scalar_one()
    monkeypatch.setattr(sessions, "_now", lambda: ends + timedelta(seconds=1))  # the loader's clock, past its end
    ended = client.get(f"/t/{tenant.slug}/orders")
    assert ended.status_code == 302 and "/login" in ended.headers["Location"]
    monkeypatch.undo()
    sign_in_tenant(client, tenant, other)  # the next session is its own user's
    page = client.get(f"/t/{tenant.slug}/orders").get_data(as_text=True)
    assert other.email in page and admin.email not in page  # (the layout names who is signed in)
