"""A tenant admin's settings page: name, colour, support access, sign-in lifetime."""
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Tenant
from tests.factories import csrf_token, sign_in_tenant


def _save(client, tenant, **fields):
    url = f"/t/{tenant.slug}/settings"
    data = {"name": "Renamed by admin", "display_colour": "#aa3300", "support_access": "y",
            "session_minutes": "60"}
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    data["csrf_token"] = csrf_token(client.get(url).get_data(as_text=True))
    return client.post(url, data=data)


def test_admin_saves_settings_and_they_show(client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    assert _save(client, tenant, support_access=None).status_code == 302
    page = client.get(f"/t/{tenant.slug}/settings").get_data(as_text=True)
    assert 'value="Renamed by admin"' in page and "#aa3300" in page
    assert 'name="support_access" type="checkbox" value="y">' in page  # unticked
    assert db.session.get(Tenant, tenant.id).name == "Renamed by admin"
    event = db.session.execute(select(AuditEvent).where(
        AuditEvent.tenant_id == tenant.id, AuditEvent.action == "tenant.settings_changed")).scalar_one()
    assert event.details["support_access"] == {"from": True, "to": False}


def test_bad_settings_are_refused_beside_the_field(client, factory):
    tenant = factory.tenant(name="Kept Name")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    for fields, message in [({"display_colour": "red"}, "six hexadecimal digits"),
                            ({"session_minutes": "1"}, MINUTES),
                            ({"name": ""}, "This field is required")]:
        response = _save(client, tenant, **fields)
        assert response.status_code == 400 and message in response.get_data(as_text=True), fields
    assert db.session.get(Tenant, tenant.id).name == "Kept Name"


MINUTES = "Enter a whole number of minutes from 5 to 10080."


def _errors(body, field):
    return re.findall(rf'<p class="error" id="{field}-error">(.*?)</p>', body)


@pytest.mark.parametrize("minutes", ["0", "abc", "4", "10081", "2.5", "", " ", "-5", "1e3", "99999999999999999999"])
def test_session_minutes_get_one_precise_message(client, factory, minutes):
    # Issue 14, item 11: "0" and "abc" said "This field is required".
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    response = _save(client, tenant, name="Not Saved", session_minutes=minutes)
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert _errors(body, "session_minutes") == [MINUTES]
    assert "This field is required" not in body
    assert f'name="session_minutes" type="number" value="{minutes}"' in body  # the input is kept
    assert db.session.get(Tenant, tenant.id).name != "Not Saved"


def test_sign_in_ends_after_the_tenants_session_lifetime(client, factory, monkeypatch):
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    sign_in_tenant(client, tenant, admin)
    _save(client, tenant, session_minutes="5")
    sign_in_tenant(client, tenant, admin)  # a new sign-in: 5 minutes
    assert client.get(f"/t/{tenant.slug}/").status_code == 200
    later = datetime.now(timezone.utc) + timedelta(minutes=6)
    monkeypatch.setattr("portal.services.sessions._now", lambda: later)
    assert client.get(f"/t/{tenant.slug}/").status_code == 302


def test_members_and_other_tenants_cannot_reach_settings(client, factory):
    a, b = factory.tenant(), factory.tenant()
    sign_in_tenant(client, a, factory.user(a, role="member"))
    assert client.get(f"/t/{a.slug}/settings").status_code == 403
    response = client.get(f"/t/{b.slug}/settings")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_each_tenants_layout_shows_its_own_colour(client, app, factory):
    """The layout's settings are read beside the signed-in user (one statement): each
    tenant's pages show its own colour, signed in or not, never a neighbour's."""
    a, b = factory.tenant(), factory.tenant()
    colours = {a.slug: "#aa3300", b.slug: "#0033aa"}
    for tenant in (a, b):
        admin = app.test_client()  # (the client fixture made it a FreshContextClient)
        sign_in_tenant(admin, tenant, factory.admin(tenant))
        assert _save(admin, tenant, display_colour=colours[tenant.slug]).status_code == 302
    for tenant, other in ((a, b), (b, a)):
        member = app.test_client()
        anonymous = member.get(f"/t/{tenant.slug}/login").get_data(as_text=True)
        sign_in_tenant(member, tenant, factory.user(tenant, role="member"))
        page = member.get(f"/t/{tenant.slug}/orders").get_data(as_text=True)
        for shown in (anonymous, page):
            assert f"--tenant-colour: {colours[tenant.slug]}" in shown
            assert colours[other.slug] not in shown
    c, member = factory.tenant(), app.test_client()  # no setting stored: the default
    sign_in_tenant(member, c, factory.user(c, role="member"))
    assert "--tenant-colour: #3b5bdb" in member.get(f"/t/{c.slug}/orders").get_data(as_text=True)
