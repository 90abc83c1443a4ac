"""A tenant admin's settings page: name, colour, support access, sign-in lifetime."""
from datetime import datetime, timedelta, timezone

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
                            ({"session_minutes": "1"}, "from 5 minutes to 7 days"),
                            ({"name": ""}, "This field is required")]:
        response = _save(client, tenant, **fields)
        assert response.status_code == 400 and message in response.get_data(as_text=True), fields
    assert db.session.get(Tenant, tenant.id).name == "Kept Name"


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
