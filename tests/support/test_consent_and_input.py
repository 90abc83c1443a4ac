"""Who may start an impersonation, of whom, and with what: the tenant's consent, a
superadmin's override, bad input beside its field, and other tenants' users and tokens."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import AuditEvent, Impersonation
from portal.support import services
from portal.tenancy.data import TenantSetting
from portal.tenancy.placement import tenant_transaction
from tests.factories import csrf_token, sign_in_staff, sign_in_tenant
from tests.support.helpers import handoff_path, start


def _support_access_off(tenant):
    with tenant_transaction(tenant) as session:
        session.merge(TenantSetting(tenant_id=tenant.id, key="support_access", value={"value": False}))


def _nothing_written(tenant):
    db.session.expire_all()
    assert db.session.execute(select(Impersonation.id).where(Impersonation.tenant_id == tenant.id)).first() is None
    assert db.session.execute(select(AuditEvent.id).where(AuditEvent.tenant_id == tenant.id,
                                                          AuditEvent.action.like("impersonation.%"))).first() is None


def test_support_access_off_refuses_support_staff(client, factory):
    tenant = factory.tenant()
    _support_access_off(tenant)
    user = factory.user(tenant)
    sign_in_staff(client, factory.staff("support"))
    page = client.get(f"/admin/tenants/{tenant.id}/impersonate").get_data(as_text=True)
    assert "turned support access off" in page and "<form" not in page.split("<main")[1]
    assert user.email not in page  # not even who its users are
    for fields in ({}, {"override_reason": "I know best"}):
        response = client.post(f"/admin/tenants/{tenant.id}/impersonate", data={
            "user": str(user.id), "reason": "r", "ticket": "t", "minutes": "5",
            "csrf_token": csrf_token(page), **fields})
        assert response.status_code == 403 and services.ACCESS_OFF in response.get_data(as_text=True)
    _nothing_written(tenant)


def test_superadmin_overrides_with_a_second_reason_and_the_tenant_log_says_so(app, client, factory):
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    _support_access_off(tenant)
    sign_in_staff(client, factory.staff("superadmin"))
    assert 'name="override_reason"' in client.get(f"/admin/tenants/{tenant.id}/impersonate").get_data(as_text=True)
    refused = start(client, tenant, factory.user(tenant))
    body = refused.get_data(as_text=True)
    assert refused.status_code == 400 and services.NEEDS_OVERRIDE in body.split('id="override_reason-error"')[1]
    _nothing_written(tenant)

    override = "Outage INC-99: their orders vanish, the admin cannot be reached"
    started = start(client, tenant, factory.user(tenant), override_reason=override)
    assert client.get(handoff_path(started)).status_code == 302
    tenant_admin = app.test_client()
    sign_in_tenant(tenant_admin, tenant, admin)
    log = tenant_admin.get(f"/t/{tenant.slug}/audit").get_data(as_text=True)
    assert "impersonation.support_access_overridden" in log and override in log
    assert "impersonation.started" in log


BAD_INPUT = [
    # Issue 14, item 11: one message for every wrong number, naming the bounds.
    ({"minutes": "61"}, "minutes", "Enter a whole number of minutes from 1 to 60."),
    ({"minutes": "0"}, "minutes", "Enter a whole number of minutes from 1 to 60."),
    ({"minutes": "abc"}, "minutes", "Enter a whole number of minutes from 1 to 60."),
    ({"minutes": "2.5"}, "minutes", "Enter a whole number of minutes from 1 to 60."),
    ({"reason": ""}, "reason", services.NO_REASON),
    ({"reason": None}, "reason", services.NO_REASON),
    ({"ticket": "  "}, "ticket", services.NO_TICKET),
    ({"write": "y", "write_reason": ""}, "write_reason", services.NO_WRITE_REASON),
    # Support staff sending an override where none is needed (with access off they get no form).
    ({"override_reason": "I know best"}, "override_reason", services.NOT_YOURS_TO_OVERRIDE),
]


@pytest.mark.parametrize("fields, field, message", BAD_INPUT)
def test_bad_input_is_shown_beside_its_field_and_changes_nothing(client, factory, fields, field, message):
    tenant = factory.tenant()
    sign_in_staff(client, factory.staff("support"))
    response = start(client, tenant, factory.user(tenant), **fields)
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in body.split(f'id="{field}-error"')[1].split("</p>")[0], body
    assert 'value="SUP-4711"' in body or field == "ticket"  # the other input is kept
    _nothing_written(tenant)


def test_a_user_of_another_tenant_is_404(client, factory):
    a, b = factory.tenant(), factory.tenant()
    b_user = factory.user(b, email=f"hidden@{b.slug}.example")
    sign_in_staff(client, factory.staff("support"))
    for user_id in (b_user.id, "not-a-uuid"):
        response = start(client, a, b_user, user=str(user_id))
        assert response.status_code == 404 and b_user.email not in response.get_data(as_text=True)
    assert b_user.email not in client.get(f"/admin/tenants/{a.id}/impersonate").get_data(as_text=True)
    _nothing_written(a)
    _nothing_written(b)


def test_handoff_tokens_are_for_their_tenant_once_and_briefly(client, factory):
    a, b = factory.tenant(), factory.tenant()
    sign_in_staff(client, factory.staff("support"))
    b_handoff = handoff_path(start(client, b, factory.user(b)))
    query = b_handoff.split("?")[1]
    assert client.get(f"/t/{a.slug}/impersonate?{query}").status_code == 404  # B's token on A
    assert client.get(f"/t/{a.slug}/").status_code == 302  # and nobody is signed in on A
    assert client.get(f"/t/{b.slug}/impersonate?{query}").status_code == 302  # still good on B
    assert client.get(f"/t/{b.slug}/impersonate?{query}").status_code == 404  # but once only
    assert client.get(f"/t/{b.slug}/impersonate").status_code == 404
    stale = handoff_path(start(client, b, factory.user(b)))
    db.session.execute(update(Impersonation)
                       .where(Impersonation.tenant_id == b.id, Impersonation.handoff_hash.is_not(None))
                       .values(started_at=datetime.now(timezone.utc) - timedelta(minutes=3)))
    db.session.commit()
    assert client.get(stale).status_code == 404


@pytest.mark.parametrize("role, allowed", [("support", True), ("superadmin", True), ("operator", False),
                                           ("viewer", False)])
def test_only_support_roles_may_impersonate(client, factory, role, allowed):
    tenant = factory.tenant()
    sign_in_staff(client, factory.staff(role))
    detail = client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True)
    assert ("Impersonate a user" in detail) == allowed
    assert client.get(f"/admin/tenants/{tenant.id}/impersonate").status_code == (200 if allowed else 403)
    if not allowed:
        response = client.post(f"/admin/tenants/{tenant.id}/impersonate", data={})
        assert response.status_code in (400, 403)  # CSRF first, then the guard (walked in test_route_guards)
