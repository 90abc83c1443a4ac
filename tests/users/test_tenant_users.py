"""A tenant admin lists and invites users; the plan's user limit and bad input.
(The mail itself: test_invitations.py.)"""
from sqlalchemy import func, select

from portal.tenancy.data import TenantUser
from portal.tenancy.placement import tenant_session
from tests.factories import csrf_token, sign_in_tenant


def _count(tenant):
    with tenant_session(tenant) as session:
        return session.execute(select(func.count()).select_from(TenantUser)).scalar_one()


def _add(client, tenant, **fields):
    url = f"/t/{tenant.slug}/users/new"
    data = {"email": "new.person@example.com", "name": "New Person", "role": "member"}
    data.update(fields)
    data["csrf_token"] = csrf_token(client.get(url).get_data(as_text=True))
    return client.post(url, data=data)


def test_admin_invites_a_user(client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    response = _add(client, tenant)
    assert response.status_code == 302  # redirect after the POST (issue 14, item 13)
    body = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Invitation sent to new.person@example.com" in body and "/set-password/" not in body
    listing = client.get(f"/t/{tenant.slug}/users").get_data(as_text=True)
    assert "new.person@example.com" in listing


def test_duplicate_email_and_bad_email_are_refused(client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    _add(client, tenant)
    before = _count(tenant)
    duplicate = _add(client, tenant, email="New.Person@example.com", name="Kept Name")
    assert duplicate.status_code == 400
    body = duplicate.get_data(as_text=True)
    assert "already a user of this tenant" in body and 'value="Kept Name"' in body
    bad = _add(client, tenant, email="nope")
    assert bad.status_code == 400 and "valid email" in bad.get_data(as_text=True)
    assert _count(tenant) == before


def test_same_email_may_be_a_user_of_two_tenants(client, factory):
    a, b = factory.tenant(), factory.tenant()
    factory.user(a, email="shared@example.com")
    sign_in_tenant(client, b, factory.admin(b))
    assert _add(client, b, email="shared@example.com").status_code == 302


def test_plan_user_limit_is_enforced(client, factory):
    tenant = factory.tenant(plan="basic")  # 10 users
    sign_in_tenant(client, tenant, factory.admin(tenant))  # the first admin + this one = 2
    for _ in range(8):
        factory.user(tenant)
    assert _count(tenant) == 10
    refused = _add(client, tenant)
    assert refused.status_code == 400
    assert "The Basic plan allows 10 users and this tenant has 10." in refused.get_data(as_text=True)
    assert _count(tenant) == 10


def test_home_shows_plan_and_usage(client, factory):
    tenant = factory.tenant(plan="professional")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    factory.order(tenant, amount_cents=1500)
    body = client.get(f"/t/{tenant.slug}/").get_data(as_text=True)
    assert "Plan: Professional" in body
    assert "Users: 2 of 100" in body
    assert "Orders: 1" in body
