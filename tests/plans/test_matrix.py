"""The plans matrix page: superadmins edit, add, retire and delete plans; every change
is audited; a bad value is refused with its message and saves nothing."""
import re

from portal.extensions import db
from portal.models import Plan
from portal.plans import services as plan_services
from portal.services import entitlements
from portal.tenants.services import get_tenant
from tests.quotas.conftest import events, plan, post_form, unique_code, user_count

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


def test_a_cap_the_tenant_sessions_apply_reaches_the_plan_s_tenants_at_once(app, client, factory, staff_client):
    """A TenantRef carries its plan's statement timeout and connection cap: saving either
    forgets the cached refs of that plan's tenants, and only theirs."""
    basic, other = factory.tenant(plan="basic"), factory.tenant(plan="professional")
    lookup = app.extensions["portal.tenant_lookup"]
    cached_other = lookup.by_slug(other.slug)
    timeout = lookup.by_slug(basic.slug).statement_timeout_ms
    staff_client("superadmin")
    saved = post_form(client, MATRIX, MATRIX, _matrix_form(**{"basic:statement_timeout_ms": str(timeout + 1000),
                                                              "basic:db_connections": "3"}))
    assert saved.status_code == 302
    fresh = lookup.by_slug(basic.slug)
    assert (fresh.statement_timeout_ms, fresh.db_connections) == (timeout + 1000, 3)
    assert lookup.by_id(basic.id) == fresh
    assert lookup.by_slug(other.slug) is cached_other  # another plan's tenant: its entry kept


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
    refused = post_form(client, MATRIX, MATRIX, data)
    assert refused.status_code == 403
    assert "Your role (operator) may not manage plans." in refused.get_data(as_text=True)  # the permission named
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


def _cell(body, key):
    """The matrix's input (or select) named `key`, as the page renders it."""
    match = re.search(rf'<(?:input|select)[^>]*name="{re.escape(key)}"[^>]*>', body)
    assert match, f"no cell {key}"
    return match.group(0)


def test_matrix_errors_are_beside_their_cells_with_the_input_kept(client, staff_client):
    """Issue 14, item 7: each bad cell is marked (aria-invalid) and named by its message
    (aria-describedby) in the cell; every cell keeps what was typed; nothing is saved."""
    staff_client("superadmin")
    before = _snapshot()
    refused = post_form(client, MATRIX, MATRIX, _matrix_form(**{
        "basic:requests_per_minute": "sixty", "professional:storage_mb": "-5", "enterprise:default_tier": "cloud",
        "basic:max_users": "7", "basic:feature:analytics": True}))
    assert refused.status_code == 400
    body = refused.get_data(as_text=True)
    for key, cell_id, message in (
            ("basic:requests_per_minute", "m-basic-requests_per_minute",
             "Basic – Requests a minute: enter a whole number."),
            ("professional:storage_mb", "m-professional-storage_mb", "a limit cannot be negative."),
            ("enterprise:default_tier", "m-enterprise-default_tier", "choose pool, bridge or silo")):
        cell = _cell(body, key)
        assert 'aria-invalid="true"' in cell and f'aria-describedby="{cell_id}-error"' in cell, key
        assert re.search(rf'<p class="error" id="{cell_id}-error">[^<]*{re.escape(message)}', body), key
    assert "3 values to correct" in body
    # Good cells are not marked, and every cell keeps what was typed.
    assert "aria-invalid" not in _cell(body, "basic:max_users") and 'value="7"' in _cell(body, "basic:max_users")
    assert 'value="sixty"' in _cell(body, "basic:requests_per_minute")
    assert "checked" in _cell(body, "basic:feature:analytics")
    assert _snapshot() == before and events("plan.changed") == []


def test_add_plan_errors_are_beside_the_field(client, staff_client):
    staff_client("superadmin")
    refused = post_form(client, MATRIX, f"{MATRIX}/new", {"code": "Bad Code!", "name": "Kept name"})
    assert refused.status_code == 400
    body = refused.get_data(as_text=True)
    code_input = re.search(r'<input[^>]*id="code"[^>]*>', body).group(0)
    assert 'aria-invalid="true"' in code_input and 'aria-describedby="code-error"' in code_input
    assert 'value="Bad Code!"' in code_input
    assert '<p class="error" id="code-error">A plan code is 2 to 32 characters' in body
    assert 'value="Kept name"' in body
    # The matrix itself shows the plans as they are (not as an empty post would).
    assert "checked" in _cell(body, "enterprise:feature:analytics")
    refused = post_form(client, MATRIX, f"{MATRIX}/new", {"code": unique_code(), "name": " "})
    assert refused.status_code == 400
    name_input = re.search(r'<input[^>]*id="name"[^>]*>', refused.get_data(as_text=True)).group(0)
    assert 'aria-invalid="true"' in name_input


def _users_up_to(factory, tenant, n):
    while user_count(tenant) < n:
        factory.user(tenant)


def test_lowering_a_limit_below_use_warns_and_needs_confirmation(client, factory, staff_client, override):
    """Issue 14, item 5: basic's users lowered to 2 while tenants have 4: the first submit
    saves nothing and lists them (slug, use, new limit); a second, confirmed one saves."""
    over, fits, shielded = (factory.tenant(plan="basic") for _ in range(3))
    _users_up_to(factory, over, 4)
    override(shielded, "limit:max_users", "50")  # an override of that limit: not affected
    _users_up_to(factory, shielded, 4)
    staff_client("superadmin")
    before = _snapshot()
    warned = post_form(client, MATRIX, MATRIX, _matrix_form(**{"basic:max_users": "2"}))
    assert warned.status_code == 409
    body = warned.get_data(as_text=True)
    warning = body.split('id="shrink-warning"')[1].split("</section>")[0]
    assert re.search(rf">{over.slug}</a></td><td>basic</td>\s*<td>Users</td><td class=\"num\">4</td>"
                     r"<td class=\"num\">2</td>", warning)
    assert fits.slug not in warning or user_count(fits) > 2
    assert shielded.slug not in warning
    assert 'value="2"' in _cell(body, "basic:max_users")  # the input is kept
    assert _snapshot() == before and events("plan.changed") == []  # the first submit changes nothing
    digest = re.search(r'name="confirm_shrink" value="([0-9a-f]+)"', warning).group(1)
    # A confirmation of another lowering does not do for this one.
    again = post_form(client, MATRIX, MATRIX, _matrix_form(**{"basic:max_users": "1", "confirm_shrink": digest}))
    assert again.status_code == 409 and _snapshot() == before
    saved = post_form(client, MATRIX, MATRIX, _matrix_form(**{"basic:max_users": "2", "confirm_shrink": digest}))
    assert saved.status_code == 302
    assert plan("basic").max_users == 2
    [event] = events("plan.changed", target="basic")
    assert event.details["max_users"] == {"from": 10, "to": 2} and event.details["tenants_over_limit"] >= 1
    # Raising a limit, or lowering it to what tenants use, asks nothing.
    assert post_form(client, MATRIX, MATRIX, _matrix_form(**{"basic:max_users": "10"})).status_code == 302
    assert post_form(client, MATRIX, MATRIX, _matrix_form(**{"basic:max_users": "4"})).status_code == 302
    assert plan("basic").max_users == 4


def test_the_shrink_warning_lists_a_bounded_number(client, factory, staff_client, monkeypatch):
    monkeypatch.setattr(plan_services, "SHRINK_SHOWN", 2)
    tenants = [factory.tenant(plan="basic") for _ in range(4)]
    for tenant in tenants:
        _users_up_to(factory, tenant, 3)
    staff_client("superadmin")
    warned = post_form(client, MATRIX, MATRIX, _matrix_form(**{"basic:max_users": "2"}))
    assert warned.status_code == 409
    body = warned.get_data(as_text=True)
    total = int(re.search(r"(\d+) tenants would be over a lowered limit", body).group(1))
    assert total >= 4
    assert body.split('id="shrink-tenants"')[1].split("</table>")[0].count("<tr><td>") == 2
    assert f"… and {total - 2} more." in body


def test_retire_delete_and_reject_ask_to_confirm(client, factory, staff_client):
    """Issue 14, item 3: the forms of irreversible actions carry data-confirm (console.js
    asks before they are sent; tests/browser/test_confirmations.py clicks them)."""
    tenant = factory.tenant(plan="basic")
    staff_client("superadmin")
    code = unique_code()
    post_form(client, MATRIX, f"{MATRIX}/new", {"code": code, "name": "Trial"})
    body = client.get(MATRIX).get_data(as_text=True)
    assert re.search(rf'action="/admin/plans/{code}/delete"[^>]*\s+data-confirm="Delete the plan Trial \({code}\)\? '
                     r'This cannot be undone\.">', body)
    assert re.search(r'action="/admin/plans/basic/retire"[^>]*\s+data-confirm="Retire Basic\?', body)
    plan_services.request_change(get_tenant(tenant.id), "professional", ("tenant_user", None, "admin@x.example"))
    body = client.get("/admin/plan-requests").get_data(as_text=True)
    assert re.search(rf'/reject"[^>]*\s+data-confirm="Reject {tenant.slug}\'s request to move to '
                     r'professional\?', body)
