"""Issue 14, item 14: "Custom domains →" only where the plan has the feature and the user
may open it; the first admin's set-password link, sent again from the staff console, is
absolute (it was the console's own /set-password/..., which no tenant answers) and has a
copy button on the outbox page."""
import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxMessage
from tests.factories import csrf_token, sign_in_staff, sign_in_tenant

DOMAINS_LINK = "Custom domains →"


@pytest.mark.parametrize("plan, role, shown", [
    ("basic", "admin", False),          # the plan lacks custom_domains: the page is a 403
    ("professional", "admin", True),
    ("professional", "reader", True),   # a custom role: settings.view is what the domains page needs
])
def test_the_settings_page_links_custom_domains_only_when_they_open(client, factory, plan, role, shown):
    tenant = factory.tenant(plan=plan)
    if role == "reader":
        factory.role(tenant, "reader", {"settings.view"})
    sign_in_tenant(client, tenant, factory.admin(tenant) if role == "admin" else factory.user(tenant, role=role))
    page = client.get(f"/t/{tenant.slug}/settings").get_data(as_text=True)
    assert (DOMAINS_LINK in page) is shown
    assert client.get(f"/t/{tenant.slug}/domains").status_code == (200 if shown else 403)


def _send_new_link(client, factory, tenant):
    sign_in_staff(client, factory.staff("superadmin"))
    page = client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True)
    sent = client.post(f"/admin/tenants/{tenant.id}/invite-admin", data={"csrf_token": csrf_token(page)})
    assert sent.status_code == 302
    return db.session.execute(select(OutboxMessage).where(OutboxMessage.tenant_id == tenant.id)
                              .order_by(OutboxMessage.created_at.desc())).scalars().first()


def test_a_new_first_admin_link_from_the_console_is_absolute_and_works(app, client, factory):
    tenant = factory.tenant()
    message = _send_new_link(client, factory, tenant)
    [link] = re.findall(r"https?://\S+", message.body)
    assert re.fullmatch(rf"http://localhost/t/{tenant.slug}/set-password/[A-Za-z0-9_-]+", link), link
    invitee = app.test_client()
    page = invitee.get(link.removeprefix("http://localhost"))
    assert page.status_code == 200 and f"admin@{tenant.slug}.example" in page.get_data(as_text=True)

    shown = client.get(f"/admin/outbox/{message.id}").get_data(as_text=True)
    assert f'id="message-link-1" value="{link}" readonly' in shown
    assert '<button type="button" data-copy="#message-link-1">Copy link</button>' in shown


def test_with_a_public_url_the_link_is_under_it(app, client, factory):
    tenant = factory.tenant()
    saved = app.config["PORTAL_PUBLIC_URL"]
    app.config["PORTAL_PUBLIC_URL"] = "https://portal.example.com/"
    try:
        message = _send_new_link(client, factory, tenant)
    finally:
        app.config["PORTAL_PUBLIC_URL"] = saved
    assert f"https://portal.example.com/t/{tenant.slug}/set-password/" in message.body
