"""Issue 14, item 9: a custom role is read by its name wherever a person reads it (users
list, user page, the signed-in person's role in the frame, the invitation pages), never its
internal key; a name in any script keeps every letter (the key is the portal's own,
`r-<hex>`, never cut down from the name), and keys of the old form keep working."""
import re

from sqlalchemy import select

from portal.tenancy.data import TenantRole
from portal.tenancy.placement import tenant_session
from tests.factories import csrf_token, sign_in_tenant

NAME = "Аудитор ÏXÏ"  # Cyrillic and accented Latin: a slug of the name would have been "auditor-i-x-i" or less


def _post(client, tenant, path, data, page):
    token = csrf_token(client.get(f"/t/{tenant.slug}{page}").get_data(as_text=True))
    return client.post(f"/t/{tenant.slug}{path}", data={**data, "csrf_token": token})


def _stored(tenant):
    with tenant_session(tenant) as session:
        return {row.key: row.name for row in session.execute(select(TenantRole)).scalars()}


def test_a_role_named_in_any_script_is_shown_by_its_whole_name(app, client, factory):
    tenant = factory.tenant(plan="enterprise")
    admin, holder = factory.admin(tenant), factory.user(tenant, role="member")
    sign_in_tenant(client, tenant, admin)
    for name in (NAME, "審計員", "Ревизор"):
        made = _post(client, tenant, "/roles/new", {"name": name, "permissions": ["users.view", "audit.view"]},
                     page="/roles/new")
        assert made.status_code == 302, name
    stored = _stored(tenant)
    assert sorted(stored.values()) == sorted([NAME, "審計員", "Ревизор"])  # every letter kept
    assert all(re.fullmatch(r"r-[0-9a-f]{8}", key) for key in stored)  # one key each, none from the name
    key = next(k for k, n in stored.items() if n == NAME)

    given = _post(client, tenant, f"/users/{holder.id}/role", {"role": key}, page=f"/users/{holder.id}")
    assert given.status_code == 302
    listing = client.get(f"/t/{tenant.slug}/users").get_data(as_text=True)
    row = listing.split(f">{holder.email}</a>", 1)[1].split("</tr>")[0]
    assert f"<td>{NAME}</td>" in row and key not in row
    page = client.get(f"/t/{tenant.slug}/users/{holder.id}").get_data(as_text=True)
    assert f'id="user-role">{NAME}</dd>' in page
    invite_form = client.get(f"/t/{tenant.slug}/users/new").get_data(as_text=True)
    assert f'<option value="{key}">{NAME}</option>' in invite_form
    invited = _post(client, tenant, "/users/new", {"email": "ivy@example.com", "role": key}, page="/users/new")
    shown = client.get(invited.headers["Location"]).get_data(as_text=True)
    assert f'id="invited-role">{NAME}<' in shown and key not in shown

    other = app.test_client()
    sign_in_tenant(other, tenant, holder)
    frame = other.get(f"/t/{tenant.slug}/users").get_data(as_text=True)
    assert f'<span class="role">{NAME}</span>' in frame and key not in frame.split("<main", 1)[0]


def test_a_role_with_a_key_of_the_old_form_keeps_working(app, client, factory):
    tenant = factory.tenant(plan="enterprise")
    factory.role(tenant, "auditor-i-x-i", {"users.view"})  # a key made from a name, before r-<hex>
    holder = factory.user(tenant, role="auditor-i-x-i")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    assert client.get(f"/t/{tenant.slug}/roles/auditor-i-x-i").status_code == 200
    listing = client.get(f"/t/{tenant.slug}/users").get_data(as_text=True)
    assert "<td>Auditor-I-X-I</td>" in listing  # its name, as stored (the factory names it key.title())
    other = app.test_client()
    sign_in_tenant(other, tenant, holder)
    assert other.get(f"/t/{tenant.slug}/users").status_code == 200
