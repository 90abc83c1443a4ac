"""Overrides (and their expiry), plan changes (downgrades refused with the numbers,
requests approved by staff) and feature gating on pages and the API."""
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from portal.extensions import db
from portal.models import PlanRequest, TenantOverride
from portal.plans import services as plan_services
from portal.services import entitlements
from portal.services.errors import Refused
from portal.tenants.services import get_tenant
from tests.factories import sign_in_tenant
from tests.quotas.conftest import events, overrides, plan, post_form, user_count


def _utc_today():
    return datetime.now(timezone.utc).date()


def test_override_applies_until_it_expires(conn, factory, override):
    tenant = factory.tenant(plan="basic")
    override(tenant, "limit:api_calls_per_day", "5000", until=_utc_today() + timedelta(days=1), reason="trial")
    override(tenant, "feature:analytics", "on", until=_utc_today() + timedelta(days=1), reason="trial")
    granted = entitlements.for_tenant(tenant.id, "basic")
    entry = granted.limits["api_calls_per_day"]
    assert (entry.value, entry.plan_value, entry.source, entry.reason) == (5000, 1000, "override", "trial")
    assert entry.expires_at.date() == _utc_today() + timedelta(days=1)
    assert granted.has("analytics")

    db.session.execute(update(TenantOverride).where(TenantOverride.tenant_id == tenant.id)
                       .values(expires_at=datetime.now(timezone.utc) - timedelta(minutes=1)))
    entitlements.forget()
    granted = entitlements.for_tenant(tenant.id, "basic")
    assert granted.limit("api_calls_per_day") == 1000
    assert granted.limits["api_calls_per_day"].source == "plan"
    assert not granted.has("analytics")


def test_an_override_ending_in_the_past_is_refused(conn, factory, override):
    tenant = factory.tenant(plan="basic")
    for until in (_utc_today() - timedelta(days=1), _utc_today()):  # today 00:00 UTC is past too
        with pytest.raises(Refused, match="The end date must be in the future."):
            override(tenant, "limit:max_users", "50", until=until)
    with pytest.raises(Refused, match="enter a whole number"):
        override(tenant, "limit:max_users", "fifty")
    with pytest.raises(Refused, match="A feature is on or off."):
        override(tenant, "feature:analytics", "maybe")
    with pytest.raises(Refused, match="Choose a feature or a limit"):
        override(tenant, "limit:nonsense", "1")
    assert overrides(tenant.id) == []
    assert entitlements.for_tenant(tenant.id, "basic").limit("max_users") == 10


def test_staff_override_form_refuses_a_past_date(client, factory, staff_client):
    tenant = factory.tenant(plan="basic")
    staff_client("operator")
    page = f"/admin/tenants/{tenant.id}"
    past = (_utc_today() - timedelta(days=1)).isoformat()
    refused = post_form(client, page, f"{page}/overrides", {
        "key": "limit:max_users", "value": "50", "until": past, "reason": "a trial"})
    assert refused.status_code == 400  # the tenant's page again, the message beside the field
    body = refused.get_data(as_text=True)
    assert '<p class="error" id="until-error">The end date must be in the future.</p>' in body
    assert re.search(rf'<input aria-describedby="until-error" aria-invalid="true"[^>]*id="until"[^>]*value="{past}"',
                     body)
    assert 'value="50"' in body and re.search(r">\s*a trial</textarea>", body)  # the input is kept
    assert 'value="limit:max_users" selected' in body or 'selected value="limit:max_users"' in body
    assert "The end date must be in the future." not in client.get(page).get_data(as_text=True)  # no flash
    assert overrides(tenant.id) == []
    saved = post_form(client, page, f"{page}/overrides", {
        "key": "limit:max_users", "value": "50", "until": (_utc_today() + timedelta(days=7)).isoformat(),
        "reason": "a trial"})
    assert saved.status_code == 302
    assert [(o.key, o.value) for o in overrides(tenant.id)] == [("limit:max_users", 50)]
    assert len(events("tenant.override_set", tenant_id=tenant.id)) == 1


def test_staff_override_form_errors_are_beside_their_fields(client, factory, staff_client):
    """Issue 14, item 7: the tenant's page again (400), each message beside its field
    (aria-invalid), what was typed kept; nothing saved, nothing flashed."""
    tenant = factory.tenant(plan="basic")
    staff_client("operator")
    page = f"/admin/tenants/{tenant.id}"
    for data, field, message in (
            ({"key": "limit:max_users", "value": "fifty", "reason": "support case"}, "value",
             "Users: enter a whole number."),
            ({"key": "feature:analytics", "value": "maybe", "reason": "support case"}, "value",
             "A feature is on or off."),
            ({"key": "limit:nonsense", "value": "1", "reason": "support case"}, "key", "Not a valid choice"),
            ({"key": "limit:max_users", "value": "20", "reason": ""}, "reason", "This field is required"),
            ({"key": "limit:max_users", "value": "20", "until": "31/12/2030", "reason": "x"}, "until",
             "Not a valid date")):
        refused = post_form(client, page, f"{page}/overrides", data)
        assert refused.status_code == 400, data
        body = refused.get_data(as_text=True)
        assert re.search(rf'<p class="error" id="{field}-error">[^<]*{re.escape(message)}', body), (data, field)
        invalid = rf'<(?:input|select|textarea) aria-describedby="{field}-error" aria-invalid="true"[^>]*id="{field}"'
        assert re.search(invalid, body), field
        if data["value"] != "20":
            assert f'value="{data["value"]}"' in body
    assert overrides(tenant.id) == [] and events("tenant.override_set", tenant_id=tenant.id) == []


def test_set_override_with_a_staff_user_loaded_earlier(conn, factory):
    """A staff user object from an earlier transaction (expired by its commit) is a valid
    actor: set_override must not flush the new override before it has its created_by."""
    tenant = factory.tenant(plan="basic")
    user = factory.staff("superadmin")
    made = plan_services.set_override(get_tenant(tenant.id), "limit:max_users", "20", None,
                                      "support case", user)
    assert made.created_by == user.email


def _eleven_users(factory, tenant):
    """Provisioning made the first admin; add users up to 11 in all."""
    while user_count(tenant) < 11:
        factory.user(tenant)
    assert user_count(tenant) == 11


def test_staff_downgrade_that_does_not_fit_is_refused(client, factory, staff_client):
    tenant = factory.tenant(plan="professional")
    _eleven_users(factory, tenant)
    staff_client("operator")
    page = f"/admin/tenants/{tenant.id}"
    refused = post_form(client, page, f"{page}/plan", {"plan": "basic"})
    assert refused.status_code == 400
    assert "Basic allows 10 users; this tenant has 11." in refused.get_data(as_text=True)
    assert get_tenant(tenant.id).plan_code == "professional"
    assert events("tenant.plan_changed", tenant_id=tenant.id) == []


def test_tenant_admin_downgrade_request_is_refused(client, factory):
    tenant = factory.tenant(plan="professional")
    admin = factory.admin(tenant)
    _eleven_users(factory, tenant)
    sign_in_tenant(client, tenant, admin)
    page = f"/t/{tenant.slug}/plan"
    refused = post_form(client, page, page, {"plan": "basic"})
    assert refused.status_code == 400
    assert "Basic allows 10 users; this tenant has 11." in refused.get_data(as_text=True)
    assert db.session.query(PlanRequest).filter_by(tenant_id=tenant.id).count() == 0
    assert get_tenant(tenant.id).plan_code == "professional"


def test_upgrade_request_approved_by_staff(client, factory, staff_client):
    tenant = factory.tenant(plan="basic")
    admin = factory.admin(tenant)
    sign_in_tenant(client, tenant, admin)
    page = f"/t/{tenant.slug}/plan"
    asked = post_form(client, page, page, {"plan": "professional"})
    assert asked.status_code == 302
    [change] = db.session.query(PlanRequest).filter_by(tenant_id=tenant.id).all()
    assert (change.from_plan, change.to_plan, change.state) == ("basic", "professional", "pending")
    assert get_tenant(tenant.id).plan_code == "basic"
    again = post_form(client, page, page, {"plan": "enterprise"})
    assert again.status_code == 400 and "waiting for staff already" in again.get_data(as_text=True)

    staff_client("operator")
    listing = client.get("/admin/plan-requests").get_data(as_text=True)
    assert tenant.slug in listing and f"/admin/plan-requests/{change.id}/approve" in listing
    approved = post_form(client, "/admin/plan-requests", f"/admin/plan-requests/{change.id}/approve", {})
    assert approved.status_code == 302
    db.session.expire_all()
    assert get_tenant(tenant.id).plan_code == "professional"
    assert db.session.get(PlanRequest, change.id).state == "approved"
    assert len(events("tenant.plan_requested", tenant_id=tenant.id)) == 1
    assert len(events("tenant.plan_changed", tenant_id=tenant.id)) == 1
    assert len(events("tenant.plan_request_approved", tenant_id=tenant.id)) == 1
    # The tenant's pages see the new plan at once (the lookup cache was told).
    sign_in_tenant(client, tenant, admin)
    assert "Your plan: Professional" in client.get(page).get_data(as_text=True)


def test_rejecting_a_plan_request_says_so_in_words(client, factory, staff_client):
    # Issue 14, item 8: the flash said "Request rejectd." (the decision's name + "d").
    tenant = factory.tenant(plan="basic")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    page = f"/t/{tenant.slug}/plan"
    assert post_form(client, page, page, {"plan": "professional"}).status_code == 302
    [change] = db.session.query(PlanRequest).filter_by(tenant_id=tenant.id).all()
    staff_client("operator")
    rejected = post_form(client, "/admin/plan-requests", f"/admin/plan-requests/{change.id}/reject", {})
    assert rejected.status_code == 302
    body = client.get(rejected.headers["Location"]).get_data(as_text=True)
    assert "Request rejected." in body and "rejectd" not in body
    db.session.expire_all()
    assert db.session.get(PlanRequest, change.id).state == "rejected"
    assert get_tenant(tenant.id).plan_code == "basic"
    assert len(events("tenant.plan_request_rejected", tenant_id=tenant.id)) == 1
    # An unknown decision is no page at all.
    unknown = post_form(client, "/admin/plan-requests", f"/admin/plan-requests/{change.id}/rejectd", {})
    assert unknown.status_code == 404


def test_analytics_page_needs_the_feature(client, factory, override):
    tenant = factory.tenant(plan="basic")
    member = factory.user(tenant)
    sign_in_tenant(client, tenant, member)
    refused = client.get(f"/t/{tenant.slug}/analytics")
    assert refused.status_code == 403
    body = refused.get_data(as_text=True)
    assert "Analytics is not part of your plan" in body and "Professional and Enterprise" in body
    override(tenant, "feature:analytics", "on")
    assert client.get(f"/t/{tenant.slug}/analytics").status_code == 200


def test_api_refused_without_api_access(client, factory, override):
    tenant = factory.tenant(plan="basic")
    assert client.get("/api/v1/status", headers={"X-Tenant-ID": tenant.slug}).status_code == 200
    override(tenant, "feature:api_access", "off")
    refused = client.get("/api/v1/status", headers={"X-Tenant-ID": tenant.slug})
    assert refused.status_code == 403
    assert refused.mimetype == "application/json"
    error = refused.json["error"]
    assert error["code"] == 403 and error["feature"] == "api_access"
    assert "API access is not part of your plan" in error["message"]
    assert error["plans"] == ["Basic", "Professional", "Enterprise"]


def test_retired_plan_is_not_offered_to_tenants(conn, factory):
    # request_change refuses a retired plan (the staff matrix retires; see test_matrix.py)
    tenant = factory.tenant(plan="basic")
    plan("enterprise").is_retired = True
    db.session.flush()
    with pytest.raises(Refused, match="Choose one of the plans offered."):
        plan_services.request_change(get_tenant(tenant.id), "enterprise",
                                     ("staff", None, "x@example"))




def test_a_decision_on_no_such_request_is_404_and_changes_nothing(client, factory, staff_client):
    """The decision route: a request id that names nothing (unknown, malformed, huge), a
    decision that is no word of its own, or the console's route asked on a tenant's pages
    is not found; the waiting request stays as it was, and no tenant's name shows."""
    tenant, other = factory.tenant(plan="basic"), factory.tenant(plan="basic")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    page = f"/t/{tenant.slug}/plan"
    assert post_form(client, page, page, {"plan": "professional"}).status_code == 302
    [change] = db.session.query(PlanRequest).filter_by(tenant_id=tenant.id).all()
    staff_client("operator")
    for path in (f"/admin/plan-requests/{uuid.uuid4()}/approve", "/admin/plan-requests/not-an-id/approve",
                 f"/admin/plan-requests/{'9' * 400}/reject", f"/admin/plan-requests/{change.id}/APPROVE"):
        answer = post_form(client, "/admin/plan-requests", path, {})
        assert answer.status_code == 404, path
        assert tenant.slug not in answer.get_data(as_text=True)
    nul = post_form(client, "/admin/plan-requests", f"/admin/plan-requests/{change.id}%00/approve", {})
    assert nul.status_code == 400  # (a NUL is refused before any view: it could not be stored)
    # Another tenant's admin, on its own pages, with a good form token: no console there.
    neighbour = client.application.test_client()
    sign_in_tenant(neighbour, other, factory.admin(other))
    on_a_tenant = post_form(neighbour, f"/t/{other.slug}/plan",
                            f"/t/{other.slug}/admin/plan-requests/{change.id}/approve", {})
    assert on_a_tenant.status_code == 404 and tenant.slug not in on_a_tenant.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(PlanRequest, change.id).state == "pending"
    assert get_tenant(tenant.id).plan_code == "basic" and get_tenant(other.id).plan_code == "basic"
    assert events("tenant.plan_request_approved", tenant_id=tenant.id) == []
