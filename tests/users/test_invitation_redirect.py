"""Issue 14, item 13: an invitation answers its POST with a redirect (a reload invites
nobody again); the page that follows says what was sent, once."""
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import OutboxMessage
from tests.factories import csrf_token, sign_in_tenant

INVITEE = "once@example.com"


def _mails(tenant):
    return db.session.execute(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.tenant_id == tenant.id, OutboxMessage.to_address == INVITEE)).scalar_one()


def test_an_invitation_redirects_and_its_page_shows_once(client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    base = f"/t/{tenant.slug}"
    page = client.get(f"{base}/users/new").get_data(as_text=True)
    sent = client.post(f"{base}/users/new", data={"email": INVITEE, "name": "Once", "role": "viewer",
                                                  "csrf_token": csrf_token(page)})
    assert sent.status_code == 302 and sent.headers["Location"].endswith(f"{base}/users/invited")
    assert _mails(tenant) == 1

    shown = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert f"Invitation sent to {INVITEE}" in shown and 'id="invited-role">Viewer<' in shown
    assert "/set-password/" not in shown  # the link goes to the invitee only

    again = client.get(sent.headers["Location"])  # a reload
    assert again.status_code == 302 and again.headers["Location"].endswith(f"{base}/users")
    assert _mails(tenant) == 1  # nobody invited twice


def test_the_invited_page_needs_users_create(client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.user(tenant, role="viewer"))
    assert client.get(f"/t/{tenant.slug}/users/invited").status_code == 403


def test_an_invitation_in_one_tenant_is_never_shown_in_another(client, factory):
    """Tenant A's invitation waits in A's session only: B's page names nobody of A's."""
    a, b = factory.tenant(), factory.tenant()
    sign_in_tenant(client, a, factory.admin(a))
    sign_in_tenant(client, b, factory.admin(b))
    page = client.get(f"/t/{a.slug}/users/new").get_data(as_text=True)
    sent = client.post(f"/t/{a.slug}/users/new", data={"email": INVITEE, "name": "Once", "role": "viewer",
                                                      "csrf_token": csrf_token(page)})
    assert sent.status_code == 302
    at_b = client.get(f"/t/{b.slug}/users/invited")
    assert at_b.status_code == 302 and INVITEE not in at_b.get_data(as_text=True)
    assert f"Invitation sent to {INVITEE}" in client.get(sent.headers["Location"]).get_data(as_text=True)
