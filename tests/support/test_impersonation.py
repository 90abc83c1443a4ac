"""Support staff look at a tenant's pages as one of its users: read-only unless write
was granted, a banner on every page, every request audited, and the ways it ends."""
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update

from portal.extensions import db
from portal.models import Impersonation
from portal.tenancy.data import ApiToken, TenantRole, TenantUser
from portal.tenancy.placement import tenant_session, tenant_transaction
from portal.tenants.services import get_tenant
from tests.conftest import BASE_DOMAIN
from tests.factories import sign_in_staff
from tests.support.helpers import REASON, TICKET, events, handoff_path, impersonate, latest, page_token, start


def _user_count(tenant):
    with tenant_session(tenant) as data:
        return data.execute(select(func.count()).select_from(TenantUser)).scalar_one()


def test_start_enter_banner_and_read_only(client, factory):
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    staff, row = impersonate(client, factory, tenant, admin)
    assert row.reason == REASON and row.ticket == TICKET and row.minutes == 15 and row.handoff_hash is None
    assert [e.reason for e in events("impersonation.started", row)] == [REASON]

    for path in ("/", "/settings", "/users", "/audit"):  # the user's own pages, as the user
        response = client.get(f"/t/{tenant.slug}{path}")
        assert response.status_code == 200, path
        banner = response.get_data(as_text=True).split('id="impersonation-banner"')[1].split("</div>")[0]
        assert staff.email in banner and f"viewing as <strong>{admin.email}</strong>" in banner
        assert "15 min left" in banner and "read-only" in banner and ">End</button>" in banner

    users_before = _user_count(tenant)
    refused = client.post(f"/t/{tenant.slug}/settings", data={
        "csrf_token": page_token(client, f"/t/{tenant.slug}/settings"), "name": "Renamed by support",
        "display_colour": "#000000", "session_minutes": "60"})
    assert refused.status_code == 403 and "read-only impersonation" in refused.get_data(as_text=True)
    assert 'id="impersonation-banner"' in refused.get_data(as_text=True)  # End is still at hand
    refused = client.post(f"/t/{tenant.slug}/users/new", data={
        "csrf_token": page_token(client, f"/t/{tenant.slug}/users/new"), "email": f"new@{tenant.slug}.example",
        "role": "member"})
    assert refused.status_code == 403 and "read-only impersonation" in refused.get_data(as_text=True)
    assert get_tenant(tenant.id).name == tenant.name and _user_count(tenant) == users_before
    assert not events("tenant.settings_changed", tenant=tenant)
    statuses = [(e.details["method"], e.details["path"], e.details["status"])
                for e in events("impersonation.request", row)]
    assert ("POST", f"/t/{tenant.slug}/settings", 403) in statuses
    assert ("POST", f"/t/{tenant.slug}/users/new", 403) in statuses


def test_with_write_access_a_write_works_and_is_audited(client, factory):
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    staff, row = impersonate(client, factory, tenant, admin, write="y", write_reason="Customer asked us to fix it")
    assert row.write_reason == "Customer asked us to fix it"
    assert "write access" in client.get(f"/t/{tenant.slug}/").get_data(as_text=True)
    saved = client.post(f"/t/{tenant.slug}/settings", data={
        "csrf_token": page_token(client, f"/t/{tenant.slug}/settings"), "name": "Fixed by support",
        "display_colour": "#2b8a3e", "session_minutes": "60", "support_access": "y"})
    assert saved.status_code == 302
    assert get_tenant(tenant.id).name == "Fixed by support"
    [request] = [e for e in events("impersonation.request", row) if e.details["method"] == "POST"]
    assert request.actor_label == staff.email and request.actor_kind == "staff"
    assert request.details["user_email"] == admin.email and request.details["status"] == 302
    assert request.tenant_id == tenant.id
    # The change's own event is the staff member's, done as the user.
    [change] = events("tenant.settings_changed", tenant=tenant)
    assert (change.actor_kind, change.actor_label) == ("staff", f"{staff.email} as {admin.email}")


def test_audited_requests_equal_requests_made(client, factory):
    tenant = factory.tenant()
    staff, row = impersonate(client, factory, tenant, factory.admin(tenant))  # the handoff: request 1
    token = page_token(client, f"/t/{tenant.slug}/settings")  # 2
    made = [
        client.get(f"/t/{tenant.slug}/"),  # 3
        client.get(f"/t/{tenant.slug}/orders"),  # 4
        client.get(f"/t/{tenant.slug}/no-such-page"),  # 5: 404
        client.post(f"/t/{tenant.slug}/settings", data={"csrf_token": token, "name": "x"}),  # 6: refused, 403
        client.post(f"/t/{tenant.slug}/settings", data={"name": "x"}),  # 7: no CSRF token, 400
        client.head(f"/t/{tenant.slug}/users"),  # 8
    ]
    assert [r.status_code for r in made] == [200, 200, 404, 403, 400, 200]
    assert client.get(f"/t/{tenant.slug}/static/css/portal.css").status_code == 200  # static: not audited
    audited = events("impersonation.request", row)
    assert len(audited) == 8 == latest(staff).request_count
    assert [e.details["status"] for e in audited] == [302, 200, 200, 200, 404, 403, 400, 200]
    assert all(e.tenant_id == tenant.id and e.actor_label == staff.email for e in audited)
    assert "token" not in audited[0].details["path"]  # the handoff token stays out of the log


def test_expiry_ends_it_and_the_next_request_is_anonymous(client, factory):
    tenant = factory.tenant()
    staff, row = impersonate(client, factory, tenant, factory.user(tenant))
    assert client.get(f"/t/{tenant.slug}/").status_code == 200
    db.session.execute(update(Impersonation).where(Impersonation.id == row.id)
                       .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    db.session.commit()
    response = client.get(f"/t/{tenant.slug}/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "Your impersonation has ended" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert latest(staff).end_cause == "expired"
    [ended] = events("impersonation.ended", row)
    assert ended.details["cause"] == "expired" and ended.tenant_id == tenant.id
    assert client.get(f"/t/{tenant.slug}/").status_code == 302  # and stays anonymous


def test_end_button_goes_back_to_the_console(client, factory):
    tenant = factory.tenant()
    staff, row = impersonate(client, factory, tenant, factory.user(tenant))
    response = client.post(f"/t/{tenant.slug}/impersonate/end",
                           data={"csrf_token": page_token(client, f"/t/{tenant.slug}/")})
    assert response.status_code == 302
    assert response.headers["Location"] == f"http://localhost/admin/tenants/{tenant.id}"
    assert latest(staff).end_cause == "ended"
    [ended] = events("impersonation.ended", row)
    assert ended.actor_label == staff.email and ended.details["cause"] == "ended"
    assert client.get(f"/t/{tenant.slug}/").status_code == 302  # signed out of the tenant
    assert client.get(f"/admin/tenants/{tenant.id}").status_code == 200  # still in the console


def test_end_on_the_tenants_own_host_goes_to_the_admin_host(client, factory):
    tenant = factory.tenant()
    sign_in_staff(client, factory.staff("support"))
    host = f"http://{tenant.slug}.{BASE_DOMAIN}"
    handoff = handoff_path(start(client, tenant, factory.user(tenant)))
    assert client.get(handoff.replace(f"/t/{tenant.slug}", ""), base_url=host).status_code == 302
    token = page_token(client, "/", base_url=host)
    response = client.post("/impersonate/end", data={"csrf_token": token}, base_url=host)
    assert response.headers["Location"] == f"http://localhost/admin/tenants/{tenant.id}"


def test_staff_sign_out_ends_every_open_impersonation(client, factory):
    a, b = factory.tenant(), factory.tenant()
    staff = factory.staff("support")
    sign_in_staff(client, staff)
    handoff_path(start(client, b, factory.user(b)))  # started, never entered
    staff, row_a = impersonate(client, factory, a, factory.user(a), staff=staff)
    assert client.get(f"/t/{a.slug}/").status_code == 200
    client.post("/admin/logout", data={"csrf_token": page_token(client, "/admin/tenants")})
    db.session.expire_all()
    causes = db.session.execute(
        select(Impersonation.end_cause).where(Impersonation.staff_user_id == staff.id)).scalars()
    assert sorted(causes) == ["signed_out", "signed_out"]
    assert len(events("impersonation.ended", tenant=a)) == 1 and len(events("impersonation.ended", tenant=b)) == 1
    assert client.get(f"/t/{a.slug}/").status_code == 302


def test_tenant_sign_out_ends_it(client, factory):
    tenant = factory.tenant()
    staff, row = impersonate(client, factory, tenant, factory.user(tenant))
    response = client.post(f"/t/{tenant.slug}/logout", data={"csrf_token": page_token(client, f"/t/{tenant.slug}/")})
    assert response.status_code == 302
    assert latest(staff).end_cause == "signed_out"


def test_the_staff_list_shows_them(client, factory):
    tenant = factory.tenant()
    staff, row = impersonate(client, factory, tenant, factory.user(tenant))
    sign_in_staff(client, factory.staff("viewer"))  # audit.view is enough to read the list
    body = client.get("/admin/impersonations").get_data(as_text=True)
    assert staff.email in body and row.user_email in body and TICKET in body and tenant.slug in body


def test_the_user_disabled_meanwhile_revokes_it(client, factory):
    tenant = factory.tenant()
    user = factory.user(tenant)
    staff, row = impersonate(client, factory, tenant, user)
    with tenant_transaction(tenant) as data:
        data.execute(update(TenantUser).where(TenantUser.id == user.id).values(is_active=False))
    assert client.get(f"/t/{tenant.slug}/").status_code == 302
    assert latest(staff).end_cause == "revoked"


def _lapsed_one(client, factory):
    """A support staff member's impersonation, started, never entered, past its time."""
    tenant = factory.tenant()
    staff = factory.staff("support")
    sign_in_staff(client, staff)
    handoff_path(start(client, tenant, factory.user(tenant)))
    db.session.execute(update(Impersonation).where(Impersonation.staff_user_id == staff.id)
                       .values(expires_at=datetime.now(timezone.utc) - timedelta(minutes=1)))
    db.session.commit()
    return tenant, staff


def test_lapsed_ones_show_as_expired_and_reading_the_list_writes_nothing(client, factory):
    tenant, staff = _lapsed_one(client, factory)
    page = client.get("/admin/impersonations").get_data(as_text=True)
    row = page.split('id="impersonations"')[1].split(f"<td>{staff.email}</td>")[1].split("</tr>")[0]
    assert "expired" in row and ">open<" not in row
    # A GET writes nothing: the CLI (cron) or the impersonation's next request closes it.
    assert latest(staff).end_cause is None and events("impersonation.ended", tenant=tenant) == []


def test_lapsed_ones_are_closed_by_the_cli(app, client, factory):
    _tenant, staff = _lapsed_one(client, factory)
    result = app.test_cli_runner().invoke(args=["support", "expire"])
    assert result.exit_code == 0 and "impersonation(s) closed" in result.output  # ours, and any other lapsed
    assert latest(staff).end_cause == "expired"


def test_even_with_write_access_nothing_that_outlives_it(client, factory):
    tenant = factory.tenant()
    admin, member = factory.admin(tenant), factory.user(tenant)
    impersonate(client, factory, tenant, admin, write="y", write_reason="Customer asked us to fix it")
    token = page_token(client, f"/t/{tenant.slug}/settings")
    attempts = [("/tokens", {"name": "mine", "scopes": "orders:read"}),
                ("/users/new", {"email": f"support@{tenant.slug}.example", "role": "admin"}),
                ("/roles/new", {"name": "Backdoor", "permissions": "users.create"}),
                (f"/users/{member.id}/reset", {}), (f"/users/{member.id}/role", {"role": "admin"})]
    for path, data in attempts:
        response = client.post(f"/t/{tenant.slug}{path}", data={**data, "csrf_token": token})
        assert response.status_code == 403, path
        assert "not while impersonating" in response.get_data(as_text=True), path
    with tenant_session(tenant) as session:
        assert session.execute(select(func.count()).select_from(ApiToken)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(TenantRole)).scalar_one() == 0
        assert session.get(TenantUser, (tenant.id, member.id)).role == "member"


def test_a_staff_member_disabled_or_demoted_loses_the_impersonation(client, factory):
    tenant = factory.tenant()
    staff, _row = impersonate(client, factory, tenant, factory.admin(tenant))
    assert client.get(f"/t/{tenant.slug}/users").status_code == 200
    staff.role = "viewer"
    db.session.commit()
    assert client.get(f"/t/{tenant.slug}/users").status_code == 302  # to sign-in: it is over


def test_the_banner_stays_on_error_pages(client, factory):
    tenant = factory.tenant()
    impersonate(client, factory, tenant, factory.user(tenant, role="viewer"))
    for path, status in ((f"/users/{uuid.uuid4()}", 404), ("/settings", 403)):  # no such user; a viewer's refusal
        response = client.get(f"/t/{tenant.slug}{path}")
        assert response.status_code == status
        assert 'id="impersonation-banner"' in response.get_data(as_text=True), path


def test_with_write_access_still_no_consent_change_no_export_no_domain_no_reenabling(client, factory):
    tenant = factory.tenant(plan="professional")
    admin, disabled = factory.admin(tenant), factory.user(tenant)
    with tenant_transaction(tenant) as session:
        session.get(TenantUser, (tenant.id, disabled.id)).is_active = False
    job = factory.export_job(tenant)
    impersonate(client, factory, tenant, admin, write="y", write_reason="Customer asked us to fix it")
    token = page_token(client, f"/t/{tenant.slug}/settings")
    # Consent stays the tenant's: turning support access off (or on) is refused beside the field.
    response = client.post(f"/t/{tenant.slug}/settings", data={
        "csrf_token": token, "name": "Same", "display_colour": "#2b8a3e", "session_minutes": "60"})
    assert response.status_code == 400 and "cannot be changed while impersonating" in response.get_data(as_text=True)
    assert get_tenant(tenant.id).name != "Same"
    # Not even a look at the export (every user's password hash), nor starting one.
    for method, path in (("get", f"/data/exports/{job.id}/download"), ("post", "/data/export")):
        response = getattr(client, method)(f"/t/{tenant.slug}{path}", data={"csrf_token": token})
        assert response.status_code == 403 and "data export" in response.get_data(as_text=True), path
    for path, data in ((f"/users/{disabled.id}/enable", {}), ("/domains", {"domain": "shop.example.org"})):
        response = client.post(f"/t/{tenant.slug}{path}", data={**data, "csrf_token": token})
        assert response.status_code == 403 and "not while impersonating" in response.get_data(as_text=True), path
    with tenant_session(tenant) as session:
        assert not session.get(TenantUser, (tenant.id, disabled.id)).is_active


def test_with_write_access_a_write_route_is_refused_unless_listed(app):
    """Fail closed: every tenant write route is either judged harmless once the
    impersonation ends (listed) or refused; a new route is refused until listed."""
    from portal.support.impersonation import WRITES_THAT_END_WITH_IT
    from tests.routes import TENANT_BLUEPRINTS, rules

    writes = {r.endpoint for r in rules(app, TENANT_BLUEPRINTS) if "POST" in r.methods}
    assert WRITES_THAT_END_WITH_IT <= writes  # no stale names in the list
    assert {"tokens.create", "users.create", "roles.create", "roles.update", "domains.add",
            "domains.verify", "selfservice.export"} <= writes - WRITES_THAT_END_WITH_IT
