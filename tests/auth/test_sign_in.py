"""Sign-in: one message for every failure, throttling, safe `next`, set-password links."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from portal.auth.services import BAD_CREDENTIALS
from portal.extensions import db
from portal.models import AuditEvent
from portal.tenancy.data import TenantUser
from portal.tenancy.placement import tenant_transaction
from tests.factories import PASSWORD, csrf_token


def _post_login(client, url, email, password, **kwargs):
    token = csrf_token(client.get(url, **kwargs).get_data(as_text=True))
    return client.post(url, data={"email": email, "password": password, "csrf_token": token}, **kwargs)


def test_wrong_password_and_unknown_email_get_the_same_message(client, factory):
    staff = factory.staff()
    wrong_password = _post_login(client, "/admin/login", staff.email, "not the password")
    unknown_email = _post_login(client, "/admin/login", "nobody@staff.example", PASSWORD)
    assert wrong_password.status_code == unknown_email.status_code == 401
    for response in (wrong_password, unknown_email):
        assert BAD_CREDENTIALS in response.get_data(as_text=True)
    assert "email" not in BAD_CREDENTIALS.split("do not match")[1]


def test_failures_are_throttled_per_account(client, factory, app):
    staff = factory.staff()
    for _ in range(app.config["LOGIN_FAILURES_PER_ACCOUNT"]):
        assert _post_login(client, "/admin/login", staff.email, "wrong").status_code == 401
    blocked = _post_login(client, "/admin/login", staff.email, PASSWORD)
    assert blocked.status_code == 401
    assert "Too many failed sign-ins" in blocked.get_data(as_text=True)
    other = factory.staff()
    assert _post_login(client, "/admin/login", other.email, PASSWORD).status_code == 302


def test_failures_are_throttled_per_address(client, factory, app):
    app.config["LOGIN_FAILURES_PER_ADDRESS"] = 3
    try:
        for n in range(3):
            _post_login(client, "/admin/login", f"nobody{n}@staff.example", "wrong")
        blocked = _post_login(client, "/admin/login", factory.staff().email, PASSWORD)
    finally:
        app.config["LOGIN_FAILURES_PER_ADDRESS"] = 50
    assert "Too many failed sign-ins" in blocked.get_data(as_text=True)


def test_next_must_be_a_local_path(client, factory):
    staff = factory.staff()
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        token = csrf_token(client.get("/admin/login").get_data(as_text=True))
        response = client.post("/admin/login", data={
            "email": staff.email, "password": PASSWORD, "next": evil, "csrf_token": token})
        assert response.status_code == 302
        assert response.headers["Location"] == "/admin/tenants", evil
        client.post("/admin/logout", data={"csrf_token": csrf_token(client.get("/admin/").get_data(as_text=True))})
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    response = client.post("/admin/login", data={
        "email": staff.email, "password": PASSWORD, "next": "/admin/audit", "csrf_token": token})
    assert response.headers["Location"] == "/admin/audit"


def test_staff_credentials_do_not_sign_in_to_a_tenant(client, factory):
    staff = factory.staff()
    tenant = factory.tenant()
    response = _post_login(client, f"/t/{tenant.slug}/login", staff.email, PASSWORD)
    assert response.status_code == 401


def test_sign_out_needs_post_and_ends_the_session(client, factory):
    staff = factory.staff()
    _post_login(client, "/admin/login", staff.email, PASSWORD)
    assert client.get("/admin/logout").status_code == 405
    token = csrf_token(client.get("/admin/").get_data(as_text=True))
    client.post("/admin/logout", data={"csrf_token": token})
    assert client.get("/admin/").status_code == 302


def _open_link(factory, app):
    from portal.lifecycle.provisioning import create_tenant
    from portal.tenancy.context import TenantRef
    from tests.factories import unique_slug

    slug = unique_slug()
    tenant, token = create_tenant(slug, f"Linked {slug}", "basic", f"first@{slug}.example")
    return TenantRef.of(tenant), token


def _set_password(client, tenant, token, password, confirm=None):
    url = f"/t/{tenant.slug}/set-password/{token}"
    page = client.get(url)
    if page.status_code != 200:
        return page
    return client.post(url, data={"password": password, "confirm": confirm or password,
                                  "csrf_token": csrf_token(page.get_data(as_text=True))})


def _first_user(tenant):
    with tenant_transaction(tenant) as session:
        return session.execute(select(TenantUser)).scalar_one()


def test_set_password_link_is_single_use(client, factory, app):
    tenant, token = _open_link(factory, app)
    response = _set_password(client, tenant, token, "a perfectly fine passphrase")
    assert response.status_code == 302
    assert client.get(f"/t/{tenant.slug}/").status_code == 200  # signed in
    used = _first_user(tenant)
    assert used.set_password_used_at is not None and used.set_password_token_hash is not None
    again = _set_password(app.test_client(), tenant, token, "another fine passphrase")
    assert again.status_code == 410
    assert (f"This link has already been used. Sign in, or ask an admin of {tenant.name} for a new one."
            in again.get_data(as_text=True))
    assert _first_user(tenant).password_hash == used.password_hash  # unchanged
    assert _post_login(app.test_client(), f"/t/{tenant.slug}/login", used.email,
                       "a perfectly fine passphrase").status_code == 302


def test_link_used_between_showing_and_sending_the_form(client, factory, app):
    tenant, token = _open_link(factory, app)
    url = f"/t/{tenant.slug}/set-password/{token}"
    form_token = csrf_token(client.get(url).get_data(as_text=True))
    assert _set_password(app.test_client(), tenant, token, "a perfectly fine passphrase").status_code == 302
    late = client.post(url, data={"password": "another fine passphrase", "confirm": "another fine passphrase",
                                  "csrf_token": form_token})
    assert late.status_code == 410 and "already been used" in late.get_data(as_text=True)


def test_a_new_link_replaces_a_used_one(client, factory, app):
    from portal.services.password_links import open_link as open_set_password_link

    tenant, token = _open_link(factory, app)
    assert _set_password(client, tenant, token, "a perfectly fine passphrase").status_code == 302
    with tenant_transaction(tenant) as session:
        fresh = open_set_password_link(session.execute(select(TenantUser)).scalar_one())
    assert _first_user(tenant).set_password_used_at is None
    assert _set_password(app.test_client(), tenant, token, "x").status_code == 404  # the old one is gone
    assert _set_password(app.test_client(), tenant, fresh, "a second fine passphrase").status_code == 302


def test_weak_or_mismatched_password_is_refused_and_link_stays_open(client, factory, app):
    tenant, token = _open_link(factory, app)
    weak = _set_password(client, tenant, token, "short")
    body = weak.get_data(as_text=True)
    assert weak.status_code == 400 and 'id="password-error">Use at least 12 characters.' in body
    differ = _set_password(client, tenant, token, "a perfectly fine passphrase", "something else entirely")
    assert "The two passwords differ" in differ.get_data(as_text=True)
    assert _first_user(tenant).password_hash is None
    assert _set_password(client, tenant, token, "a perfectly fine passphrase").status_code == 302


def test_expired_link_is_refused(client, factory, app):
    tenant, token = _open_link(factory, app)
    expired_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    with tenant_transaction(tenant) as session:
        session.execute(update(TenantUser).values(set_password_expires_at=expired_at))
    url = f"/t/{tenant.slug}/set-password/{token}"
    page = client.get(url)
    assert page.status_code == 410
    assert (f"This invitation expired on {expired_at:%Y-%m-%d %H:%M} UTC. Ask an admin of {tenant.name} "
            f"for a new one." in page.get_data(as_text=True))
    token_of_form = csrf_token(client.get(f"/t/{tenant.slug}/login").get_data(as_text=True))
    posted = client.post(url, data={"password": "a perfectly fine passphrase",
                                    "confirm": "a perfectly fine passphrase", "csrf_token": token_of_form})
    assert posted.status_code == 410
    assert _first_user(tenant).password_hash is None


def test_unknown_link_is_not_valid(client, factory):
    tenant = factory.tenant()
    response = client.get(f"/t/{tenant.slug}/set-password/no-such-token")
    assert response.status_code == 404 and "This link is not valid." in response.get_data(as_text=True)


def test_link_of_tenant_a_does_not_work_on_b(client, factory, app):
    tenant, token = _open_link(factory, app)
    other = factory.tenant()
    url = f"/t/{other.slug}/set-password/{token}"
    response = client.get(url)
    body = response.get_data(as_text=True)
    assert response.status_code == 404 and "This link is not valid." in body
    assert tenant.slug not in body and tenant.name not in body and f"first@{tenant.slug}" not in body
    form_token = csrf_token(client.get(f"/t/{other.slug}/login").get_data(as_text=True))
    posted = client.post(url, data={"password": "a perfectly fine passphrase",
                                    "confirm": "a perfectly fine passphrase", "csrf_token": form_token})
    assert posted.status_code == 404
    assert _first_user(tenant).password_hash is None


def test_the_audit_log_names_who_signed_in_and_who_set_a_password(client, factory, app):
    # Issue 14, item 10: the tenant's audit log credited these to "system".
    tenant, token = _open_link(factory, app)
    first = _first_user(tenant)
    assert _set_password(client, tenant, token, "a perfectly fine passphrase").status_code == 302
    member = factory.user(tenant, role="member")
    assert _post_login(app.test_client(), f"/t/{tenant.slug}/login", member.email, PASSWORD).status_code == 302
    # A refused sign-in is no one's: it is not written as anyone's sign-in.
    assert _post_login(app.test_client(), f"/t/{tenant.slug}/login", member.email, "wrong").status_code == 401

    def actors(action):
        return db.session.execute(select(AuditEvent.actor_kind, AuditEvent.actor_id, AuditEvent.actor_label)
                                  .where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)
                                  .order_by(AuditEvent.id)).all()

    assert actors("tenant_user.password_set") == [("tenant_user", str(first.id), first.email)]
    assert actors("tenant_user.sign_in") == [("tenant_user", str(member.id), member.email)]
    # The admin (signed in by setting the password) reads the log: each row names the person.
    log = client.get(f"/t/{tenant.slug}/audit")
    assert log.status_code == 200
    rows = {row.split("tenant_user.", 1)[1].split("<", 1)[0]: row
            for row in log.get_data(as_text=True).split("<tr")[1:] if "tenant_user." in row}
    assert member.email in rows["sign_in"] and "system" not in rows["sign_in"]
    assert first.email in rows["password_set"] and "system" not in rows["password_set"]
