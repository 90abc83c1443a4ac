"""The plans matrix page: superadmins edit, add, retire and delete plans; every change
is audited; a bad value is refused with its message and saves nothing."""
from portal.extensions import db
from portal.models import Plan
from portal.plans import services as plan_services
from portal.services import entitlements
from tests.quotas.conftest import events, plan, post_form, unique_code

MATRIX = "/admin/plans"


def _matrix_form(**changes):
    """The matrix form as the page would post it today, with `changes` applied
    (keys like "basic:requests_per_minute" or "basic:feature:analytics": True/False)."""
    data = {}
    for p in plan_services.plans():
        for name in entitlements.FEATURES:
            if p.features.get(name):
                data[f"{p.code}:feature:{name}"] = "on"
        for name in entitlements.LIMITS:
            value = getattr(p, name)
            data[f"{p.code}:{name}"] = "" if value is None else str(value)
        data[f"{p.code}:default_tier"] = p.default_tier
    for key, value in changes.items():
        if value is True:
            data[key] = "on"
        elif value is False:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def _snapshot():
    db.session.expire_all()
    return {p.code: (dict(p.features), *(getattr(p, n) for n in entitlements.LIMITS), p.default_tier, p.is_retired)
            for p in db.session.query(Plan).all()}


def test_superadmin_saves_the_matrix_and_it_is_audited(client, factory, staff_client):
    tenant = factory.tenant(plan="basic")
    staff_client("superadmin")
    page = client.get(MATRIX)
    assert page.status_code == 200
    assert 'name="basic:requests_per_minute"' in page.get_data(as_text=True)
    assert not plan("basic").features.get("analytics")
    saved = post_form(client, MATRIX, MATRIX, _matrix_form(**{"basic:requests_per_minute": "61",
                                                              "basic:feature:analytics": True}))
    assert saved.status_code == 302
    basic = plan("basic")
    assert basic.requests_per_minute == 61 and basic.features["analytics"] is True
    [event] = events("plan.changed", target="basic")
    assert event.details["requests_per_minute"] == {"from": 300, "to": 61}
    assert event.details["features"]["to"]["analytics"] is True
    assert events("plan.changed", target="professional") == []  # unchanged plans: no event
    # Tenants on the plan get it at once.
    granted = entitlements.for_tenant(tenant.id, "basic")
    assert granted.limit("requests_per_minute") == 61 and granted.has("analytics")


def test_bad_values_are_refused_with_the_message_and_nothing_saved(client, staff_client):
    staff_client("superadmin")
    before = _snapshot()
    for value, message in (("sixty", "Basic – Requests a minute: enter a whole number."),
                           ("-5", "Basic – Requests a minute: a limit cannot be negative.")):
        # A good change elsewhere in the same post is not saved either.
        refused = post_form(client, MATRIX, MATRIX, _matrix_form(**{
            "basic:requests_per_minute": value, "professional:storage_mb": "20000"}))
        assert refused.status_code == 400
        body = refused.get_data(as_text=True)
        assert message in body
        assert f'value="{value}"' in body  # the input is kept on the page
    refused = post_form(client, MATRIX, MATRIX, _matrix_form(**{"basic:default_tier": "cloud"}))
    assert refused.status_code == 400 and "choose pool, bridge or silo" in refused.get_data(as_text=True)
    assert _snapshot() == before
    assert events("plan.changed") == []


def test_operator_may_look_but_not_change(client, staff_client):
    staff_client("operator")
    page = client.get(MATRIX)
    assert page.status_code == 200
    assert "Save the matrix" not in page.get_data(as_text=True)
    before = _snapshot()
    data = _matrix_form(**{"basic:requests_per_minute": "61"})
    assert post_form(client, MATRIX, MATRIX, data).status_code == 403
    assert post_form(client, MATRIX, f"{MATRIX}/new", {"code": "sneaky", "name": "Sneaky"}).status_code == 403
    assert post_form(client, MATRIX, f"{MATRIX}/basic/retire", {}).status_code == 403
    assert post_form(client, MATRIX, f"{MATRIX}/basic/delete", {}).status_code == 403
    assert _snapshot() == before


def test_a_plan_in_use_cannot_be_deleted(client, factory, staff_client):
    factory.tenant(plan="basic")
    staff_client("superadmin")
    refused = post_form(client, MATRIX, f"{MATRIX}/basic/delete", {})
    assert refused.status_code == 302
    assert "Basic is in use by" in client.get(MATRIX).get_data(as_text=True)
    assert plan("basic") is not None
    assert events("plan.deleted") == []


def test_add_then_delete_an_unused_plan(client, staff_client):
    staff_client("superadmin")
    code = unique_code()
    added = post_form(client, MATRIX, f"{MATRIX}/new", {"code": code, "name": "Trial"})
    assert added.status_code == 302
    assert plan(code).name == "Trial"
    assert f"{code} · 0 tenant(s)" in client.get(MATRIX).get_data(as_text=True)
    assert len(events("plan.added", target=code)) == 1
    for bad_code, message in ((code, f"A plan with code {code} exists."),
                              ("Bad Code!", "A plan code is 2 to 32 characters")):
        refused = post_form(client, MATRIX, f"{MATRIX}/new", {"code": bad_code, "name": "Other"})
        assert refused.status_code == 400 and message in refused.get_data(as_text=True)
    assert plan(code).name == "Trial"
    deleted = post_form(client, MATRIX, f"{MATRIX}/{code}/delete", {})
    assert deleted.status_code == 302
    assert plan(code) is None
    assert len(events("plan.deleted", target=code)) == 1


def test_retiring_a_plan_hides_it_from_the_new_tenant_form(client, factory, staff_client):
    staff_client("superadmin")
    code = unique_code()
    post_form(client, MATRIX, f"{MATRIX}/new", {"code": code, "name": "Legacy"})
    assert f'value="{code}"' in client.get("/admin/tenants/new").get_data(as_text=True)
    retired = post_form(client, MATRIX, f"{MATRIX}/{code}/retire", {})
    assert retired.status_code == 302
    assert plan(code).is_retired
    assert len(events("plan.retired", target=code)) == 1
    assert f'value="{code}"' not in client.get("/admin/tenants/new").get_data(as_text=True)
    assert "retired" in client.get(MATRIX).get_data(as_text=True)
    # Offered again, it is back.
    post_form(client, MATRIX, f"{MATRIX}/{code}/retire", {})
    assert not plan(code).is_retired
    assert f'value="{code}"' in client.get("/admin/tenants/new").get_data(as_text=True)
