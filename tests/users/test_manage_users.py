"""Tenant admins disable, enable, remove users and reset passwords; and read the tenant's
own audit log. Another tenant's users and events stay out of reach."""
import pytest

from portal.services.errors import Refused
from tests.factories import PASSWORD, csrf_token, sign_in_tenant


def _act(client, tenant, user, action):
    page = client.get(f"/t/{tenant.slug}/users/{user.id}")
    return client.post(f"/t/{tenant.slug}/users/{user.id}/{action}",
                       data={"csrf_token": csrf_token(page.get_data(as_text=True))})


def test_disable_ends_sessions_enable_brings_back_remove_deletes(app, client, factory):
    tenant = factory.tenant()
    admin, member = factory.admin(tenant), factory.user(tenant, email=f"m@{tenant.slug}.example")
    other = app.test_client()
    sign_in_tenant(other, tenant, member)
    sign_in_tenant(client, tenant, admin)
    assert _act(client, tenant, member, "disable").status_code == 302
    assert other.get(f"/t/{tenant.slug}/").status_code == 302  # its session is over
    assert "disabled" in client.get(f"/t/{tenant.slug}/users").get_data(as_text=True)
    assert _act(client, tenant, member, "enable").status_code == 302
    sign_in_tenant(other, tenant, member)
    assert _act(client, tenant, member, "remove").status_code == 302
    table = client.get(f"/t/{tenant.slug}/users").get_data(as_text=True).split('id="users"')[1]
    assert member.email not in table
    assert client.get(f"/t/{tenant.slug}/users/{member.id}").status_code == 404


def test_reset_password_mails_a_new_link_and_ends_the_old_password(app, client, factory):
    tenant = factory.tenant()
    admin, member = factory.admin(tenant), factory.user(tenant)
    sign_in_tenant(client, tenant, admin)
    response = _act(client, tenant, member, "reset")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"{member.email}: new link sent." in page and "/set-password/" not in page
    assert "invited" in page.split('id="users"')[1].split(member.email, 1)[1].split("</tr>")[0]
    other = app.test_client()
    page = other.get(f"/t/{tenant.slug}/login")
    refused = other.post(f"/t/{tenant.slug}/login", data={
        "email": member.email, "password": PASSWORD, "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert refused.status_code == 401


def test_refused_on_yourself_and_on_the_last_admin(client, factory):
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    sign_in_tenant(client, tenant, admin)
    response = client.post(f"/t/{tenant.slug}/users/{admin.id}/disable", data={
        "csrf_token": csrf_token(client.get(f"/t/{tenant.slug}/users").get_data(as_text=True))})
    assert response.status_code == 302
    assert "your own account" in client.get(response.headers["Location"]).get_data(as_text=True)
    member = factory.user(tenant)
    assert _act(client, tenant, member, "promote").status_code == 404  # no such action
    # Through the pages the acting admin is always another active admin; the rule guards
    # every other caller of the service (an actor that is not an admin of the tenant).
    from portal.tenancy.context import tenant_context
    from portal.users import services

    with tenant_context(tenant):
        first_admin = [u for u in services.list_users() if u.email == f"admin@{tenant.slug}.example"][0]
        services.change_user(first_admin.id, "disable", factory.principal(tenant, admin))
        outsider = type("Outsider", (), {"id": None, "is_authenticated": False})()
        with pytest.raises(Refused, match="last active admin"):
            services.change_user(admin.id, "remove", outsider)


def test_members_cannot_manage_and_other_tenants_users_are_404(client, factory):
    a, b = factory.tenant(), factory.tenant()
    b_user = factory.user(b, email=f"secret@{b.slug}.example")
    sign_in_tenant(client, a, factory.admin(a))
    token = csrf_token(client.get(f"/t/{a.slug}/users").get_data(as_text=True))
    for action in ("disable", "reset", "remove"):
        response = client.post(f"/t/{a.slug}/users/{b_user.id}/{action}", data={"csrf_token": token})
        assert response.status_code == 404 and b_user.email not in response.get_data(as_text=True)
    member = factory.user(a, role="member")
    other = client.application.test_client()
    sign_in_tenant(other, a, member)
    page = other.get(f"/t/{a.slug}/users")
    response = other.post(f"/t/{a.slug}/users/{member.id}/disable",
                          data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 403


def test_own_audit_log_shows_own_events_only(client, factory):
    a, b = factory.tenant(), factory.tenant()
    admin = factory.admin(a)
    sign_in_tenant(client, a, admin)
    member = factory.user(a)
    _act(client, a, member, "disable")
    body = client.get(f"/t/{a.slug}/audit").get_data(as_text=True)
    assert "tenant_user.disable" in body and member.email in body
    assert b.slug not in body and f"admin@{b.slug}.example" not in body
    filtered = client.get(f"/t/{a.slug}/audit?action=tenant_user.disable").get_data(as_text=True)
    assert "tenant_user.sign_in" not in filtered.split("<tbody>")[1]
