"""Custom roles on the permission matrix: made, changed and deleted by a tenant's admins,
given to users, and never a way to more than the giver holds."""
import re

from sqlalchemy import select

from portal.tenancy.data import TenantRole, TenantUser
from portal.tenancy.placement import tenant_session
from tests.factories import csrf_token, sign_in_tenant


def _post(client, tenant, path, data, page="/roles"):
    token = csrf_token(client.get(f"/t/{tenant.slug}{page}").get_data(as_text=True))
    return client.post(f"/t/{tenant.slug}{path}", data={**data, "csrf_token": token})


def _roles(tenant):
    with tenant_session(tenant) as session:
        return {r.key: sorted(r.permissions) for r in session.execute(select(TenantRole)).scalars()}


def _key_named(tenant, name):
    with tenant_session(tenant) as session:
        return session.execute(select(TenantRole.key).where(TenantRole.name == name)).scalar_one()


def _role_of(tenant, user):
    with tenant_session(tenant) as session:
        return session.get(TenantUser, (tenant.id, user.id)).role


def test_admin_defines_a_role_gives_it_and_it_decides_at_once(app, client, factory):
    tenant = factory.tenant(plan="enterprise")
    admin, clerk = factory.admin(tenant), factory.user(tenant, role="member")
    sign_in_tenant(client, tenant, admin)
    response = _post(client, tenant, "/roles/new", {"name": "Billing clerk",
                                                   "permissions": ["orders.view", "audit.view"]})
    assert response.status_code == 302
    key = _key_named(tenant, "Billing clerk")  # made by the portal, not from the name
    assert _roles(tenant) == {key: ["audit.view", "orders.view"]} and re.fullmatch(r"r-[0-9a-f]{8}", key)
    page = client.get(f"/t/{tenant.slug}/roles").get_data(as_text=True)
    assert "Billing clerk" in page and 'title="audit.view">✓' in page
    assert _post(client, tenant, f"/users/{clerk.id}/role", {"role": key},
                 page=f"/users/{clerk.id}").status_code == 302
    assert _role_of(tenant, clerk) == key

    other = app.test_client()
    sign_in_tenant(other, tenant, clerk)
    assert other.get(f"/t/{tenant.slug}/audit").status_code == 200
    assert other.get(f"/t/{tenant.slug}/orders").status_code == 200
    refused = other.get(f"/t/{tenant.slug}/users")
    assert refused.status_code == 403 and "may not view users" in refused.get_data(as_text=True)
    nav = other.get(f"/t/{tenant.slug}/").get_data(as_text=True)
    assert "Audit log" in nav and ">Users<" not in nav
    # Changing the role changes what its holders may do on their next request.
    assert _post(client, tenant, f"/roles/{key}", {"name": "Billing clerk",
                                                  "permissions": ["orders.view"]}).status_code == 302
    # Fewer rights: its holders' sessions end, and they sign in afresh to the role as it is now.
    assert other.get(f"/t/{tenant.slug}/audit").status_code == 302
    sign_in_tenant(other, tenant, clerk)
    assert other.get(f"/t/{tenant.slug}/audit").status_code == 403
    # A role in use is not deleted; once nobody holds it, it is.
    _post(client, tenant, f"/roles/{key}/delete", {})
    assert key in _roles(tenant)
    assert "1 user holds this role" in client.get(f"/t/{tenant.slug}/roles").get_data(as_text=True)
    _post(client, tenant, f"/users/{clerk.id}/role", {"role": "viewer"}, page=f"/users/{clerk.id}")
    _post(client, tenant, f"/roles/{key}/delete", {})
    assert _roles(tenant) == {}


def test_bad_roles_are_refused_with_a_message_and_change_nothing(client, factory):
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    factory.role(tenant, "auditor", {"audit.view"})
    sign_in_tenant(client, tenant, admin)
    for data, message in [
        ({"name": "Fly", "permissions": ["orders.fly"]}, "Not a permission: orders.fly"),
        ({"name": "Root", "permissions": ["orders.view", "everything"]}, "Not a permission: everything"),
        ({"name": "", "permissions": ["orders.view"]}, "Enter a name for the role"),
        ({"name": "Nothing", "permissions": []}, "Choose at least one permission"),
        ({"name": "Admin", "permissions": ["orders.view"]}, "admin is a built-in role"),
        ({"name": "Auditor", "permissions": ["orders.view"]}, "There is already a role called Auditor"),
        ({"name": "x" * 61, "permissions": ["orders.view"]}, "longer than 60 characters"),
    ]:
        response = _post(client, tenant, "/roles/new", data)
        body = response.get_data(as_text=True)
        assert response.status_code == 400 and message in body, (data, body[:300])
        assert f'value="{data["name"]}"' in body  # the input is kept
    assert _roles(tenant) == {"auditor": ["audit.view"]}
    # Editing with an unknown permission changes nothing either.
    assert _post(client, tenant, "/roles/auditor", {"name": "Auditor", "permissions": ["audit.view", "x.y"]}
                 ).status_code == 400
    assert _roles(tenant) == {"auditor": ["audit.view"]}
    renamed = _post(client, tenant, "/roles/auditor", {"name": "Viewer", "permissions": ["audit.view"]})
    assert renamed.status_code == 400 and "viewer is a built-in role" in renamed.get_data(as_text=True)
    assert client.get(f"/t/{tenant.slug}/roles/admin").status_code == 404  # built-ins are not edited


def test_nobody_grants_more_than_they_hold(client, factory):
    tenant = factory.tenant()
    factory.role(tenant, "user-manager", {"users.view", "users.create", "users.update", "roles.view",
                                          "roles.create", "orders.view", "analytics.view"})
    factory.role(tenant, "reader", {"users.view"})
    manager, member, admin = (factory.user(tenant, role="user-manager"), factory.user(tenant, role="member"),
                              factory.admin(tenant))
    sign_in_tenant(client, tenant, manager)
    refused = _post(client, tenant, "/roles/new", {"name": "Bigger", "permissions": ["tokens.create"]})
    assert refused.status_code == 400 and "do not hold yourself: tokens.create" in refused.get_data(as_text=True)
    # Not making a member an admin, nor taking an admin's role away.
    for user, role in ((member, "admin"), (admin, "viewer")):
        response = _post(client, tenant, f"/users/{user.id}/role", {"role": role}, page=f"/users/{user.id}")
        assert "do not hold yourself" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert (_role_of(tenant, member), _role_of(tenant, admin)) == ("member", "admin")
    invite = _post(client, tenant, "/users/new", {"email": f"new@{tenant.slug}.example", "role": "admin"},
                   page="/users/new")
    assert invite.status_code == 400 and "do not hold yourself" in invite.get_data(as_text=True)
    # Taking a role away needs all it grants, too: a member's orders.create is not theirs.
    _post(client, tenant, f"/users/{member.id}/role", {"role": "viewer"}, page=f"/users/{member.id}")
    assert _role_of(tenant, member) == "member"
    # What they hold they may give, and take.
    viewer = factory.user(tenant, role="viewer")
    _post(client, tenant, f"/users/{viewer.id}/role", {"role": "reader"}, page=f"/users/{viewer.id}")
    assert _role_of(tenant, viewer) == "reader"


def test_roles_of_another_tenant_do_not_exist_here(client, factory):
    a, b = factory.tenant(), factory.tenant()
    factory.role(b, "b-secret-role", {"orders.view"})
    admin, member = factory.admin(a), factory.user(a)
    sign_in_tenant(client, a, admin)
    response = _post(client, a, f"/users/{member.id}/role", {"role": "b-secret-role"}, page=f"/users/{member.id}")
    assert "Choose one of this tenant&#39;s roles" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert _role_of(a, member) == "member"
    assert "b-secret-role" not in client.get(f"/t/{a.slug}/roles").get_data(as_text=True)
    for path in ("/roles/b-secret-role", "/roles/b-secret-role/delete"):
        method = client.get if path.endswith("role") else client.post
        assert method(f"/t/{a.slug}{path}").status_code in (404, 400)
    assert _post(client, a, "/roles/b-secret-role/delete", {}).status_code == 404
    assert _roles(b) == {"b-secret-role": ["orders.view"]}


def test_the_last_admin_keeps_the_role(client, factory):
    tenant = factory.tenant()
    second = factory.admin(tenant)
    sign_in_tenant(client, tenant, second)
    first = [u for u in _users(tenant) if u.email == f"admin@{tenant.slug}.example"][0]
    _post(client, tenant, f"/users/{first.id}/disable", {}, page=f"/users/{first.id}")
    # Now `second` is the only active admin: nobody else can demote them, and they cannot demote themselves.
    response = _post(client, tenant, f"/users/{second.id}/role", {"role": "member"}, page="/users")
    assert "your own account" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert _role_of(tenant, second) == "admin"


def _users(tenant):
    with tenant_session(tenant) as session:
        return session.execute(select(TenantUser)).scalars().all()


def test_a_lesser_role_does_not_act_on_a_greater_one(client, factory):
    """users.update and users.delete do not let a custom role reset, disable or remove
    someone whose role grants what it lacks."""
    tenant = factory.tenant()
    factory.role(tenant, "helpdesk", {"users.view", "users.update", "users.delete"})
    helpdesk, admin, other = (factory.user(tenant, role="helpdesk"), factory.admin(tenant),
                              factory.user(tenant, role="helpdesk"))
    sign_in_tenant(client, tenant, helpdesk)
    for action in ("reset", "disable", "remove"):
        response = _post(client, tenant, f"/users/{admin.id}/{action}", {}, page=f"/users/{admin.id}")
        assert "do not hold yourself" in client.get(response.headers["Location"]).get_data(as_text=True), action
    [row] = [u for u in _users(tenant) if u.id == admin.id]
    assert row.is_active and row.password_hash is not None
    # A peer with the same role: allowed.
    assert _post(client, tenant, f"/users/{other.id}/disable", {}, page=f"/users/{other.id}").status_code == 302
    assert not [u for u in _users(tenant) if u.id == other.id][0].is_active


def test_editing_a_role_needs_what_it_grants_now(client, factory):
    tenant = factory.tenant()
    factory.role(tenant, "auditor", {"audit.view", "orders.view"})
    factory.role(tenant, "role-editor", {"roles.view", "roles.update", "orders.view"})
    sign_in_tenant(client, tenant, factory.user(tenant, role="role-editor"))
    refused = _post(client, tenant, "/roles/auditor", {"name": "Auditor", "permissions": ["orders.view"]})
    assert refused.status_code == 400 and "do not hold yourself: audit.view" in refused.get_data(as_text=True)
    assert _roles(tenant)["auditor"] == ["audit.view", "orders.view"]


def test_a_nul_character_is_a_clear_400_not_a_server_error(client, factory):
    tenant = factory.tenant()
    member = factory.user(tenant)
    sign_in_tenant(client, tenant, factory.admin(tenant))
    for path, data, page in ((f"/users/{member.id}/role", {"role": "\x00"}, f"/users/{member.id}"),
                             ("/roles/new", {"name": "a\x00b", "permissions": ["orders.view"]}, "/roles")):
        response = _post(client, tenant, path, data, page=page)
        assert response.status_code == 400 and "NUL character" in response.get_data(as_text=True), path
    assert _roles(tenant) == {} and _role_of(tenant, member) == "member"
    assert client.get(f"/t/{tenant.slug}/roles/a%00b").status_code == 400  # in the path, too
    api = client.post(f"/t/{tenant.slug}/api/v1/orders", json={"customer": "a\u0000b", "amount_cents": 1})
    assert api.status_code == 400 and "NUL character" in api.json["error"]["message"]
