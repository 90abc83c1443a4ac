"""Invitations by mail: kept in the outbox with no SMTP server, delivered to a real SMTP
server (aiosmtpd) with one, and nothing made when the mail server refuses; the invitee
follows the link, sets a password and signs in; resend and reset send new links."""
import email
import logging
import re
from email import policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, OutboxMessage
from portal.tenancy.data import TenantUser
from portal.tenancy.placement import tenant_session
from tests.factories import PASSWORD, csrf_token, sign_in_staff, sign_in_tenant
from tests.servers import free_port

INVITEE = "new.person@example.com"
NEW_PASSWORD = "a perfectly fine passphrase"
LINK = re.compile(r"https?://[^/\s]+(/t/[a-z0-9-]+/set-password/[A-Za-z0-9_-]+)")


def _invite(client, tenant, **fields):
    url = f"/t/{tenant.slug}/users/new"
    data = {"email": INVITEE, "name": "New Person", "role": "member", **fields}
    data["csrf_token"] = csrf_token(client.get(url).get_data(as_text=True))
    return client.post(url, data=data)


def _act(client, tenant, user_id, action):
    page = client.get(f"/t/{tenant.slug}/users/{user_id}")
    return client.post(f"/t/{tenant.slug}/users/{user_id}/{action}",
                       data={"csrf_token": csrf_token(page.get_data(as_text=True))})


def _messages(to=INVITEE):
    return db.session.execute(select(OutboxMessage).where(OutboxMessage.to_address == to)
                              .order_by(OutboxMessage.created_at)).scalars().all()


def _user(tenant, address=INVITEE):
    with tenant_session(tenant) as session:
        return session.execute(select(TenantUser).where(TenantUser.email == address)).scalar_one_or_none()


def _user_count(tenant):
    with tenant_session(tenant) as session:
        return session.execute(select(func.count()).select_from(TenantUser)).scalar_one()


def _set_password(client, path, password, confirm=None):
    page = client.get(path)
    if page.status_code != 200:
        return page
    return client.post(path, data={"password": password, "confirm": confirm or password,
                                   "csrf_token": csrf_token(page.get_data(as_text=True))})


def _sign_in(client, tenant, address, password):
    url = f"/t/{tenant.slug}/login"
    token = csrf_token(client.get(url).get_data(as_text=True))
    return client.post(url, data={"email": address, "password": password, "csrf_token": token})


@pytest.fixture()
def admin_client(client, factory):
    """(client signed in as a new admin of a new tenant, tenant)."""
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    return client, tenant


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture()
def mail_log():
    """The mail logger's lines (its own handler: the portal's loggers need not reach the
    root logger that caplog listens on)."""
    handler, logger = Lines(), logging.getLogger("portal.services.mail")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self):
        self.received = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


@pytest.fixture()
def smtp_config(app):
    """set(port): point the app at 127.0.0.1:port for SMTP; restored after the test."""
    saved = {key: app.config[key] for key in ("SMTP_HOST", "SMTP_PORT")}

    def set_(port):
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port)

    yield set_
    app.config.update(saved)


@pytest.fixture()
def smtp_server(smtp_config):
    """A real SMTP server on a free port, the app configured to use it: its Inbox."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    smtp_config(port)
    yield inbox
    controller.stop()


def test_outbox_mode_invitee_follows_the_link_and_signs_in(app, admin_client, mail_log):
    client, tenant = admin_client
    response = _invite(client, tenant)
    assert response.status_code == 302  # redirect after the POST (issue 14, item 13)
    body = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Invitation sent to {INVITEE}" in body and "the invitation is in the portal's outbox" in body
    assert "/set-password/" not in body  # the admin no longer sees the link

    [message] = _messages()
    assert (message.transport, message.tenant_id, message.sent_at, message.error) == ("outbox", tenant.id, None, None)
    assert message.subject == f"You are invited to {tenant.name}"
    path = LINK.search(message.body).group(1)
    assert path.startswith(f"/t/{tenant.slug}/set-password/")
    assert "expires on" in message.body
    # The log line is how a developer on `make run` gets the link.
    [line] = [text for text in mail_log if "outbox" in text]
    assert f"to={INVITEE}" in line and message.subject in line and path in line

    listing = client.get(f"/t/{tenant.slug}/users").get_data(as_text=True)
    row = listing.split(INVITEE, 1)[1].split("</tr>")[0]
    assert "invited" in row and "link expires" in row and "Resend invitation" in row

    invitee = app.test_client()
    page = invitee.get(path)
    assert page.status_code == 200 and INVITEE in page.get_data(as_text=True)
    assert _set_password(invitee, path, NEW_PASSWORD).status_code == 302
    assert invitee.get(f"/t/{tenant.slug}/").status_code == 200  # signed in
    token = csrf_token(invitee.get(f"/t/{tenant.slug}/").get_data(as_text=True))
    invitee.post(f"/t/{tenant.slug}/logout", data={"csrf_token": token})
    assert invitee.get(f"/t/{tenant.slug}/").status_code == 302
    assert _sign_in(invitee, tenant, INVITEE, NEW_PASSWORD).status_code == 302
    assert invitee.get(f"/t/{tenant.slug}/").status_code == 200
    assert "active" in client.get(f"/t/{tenant.slug}/users").get_data(as_text=True).split(INVITEE, 1)[1]


def test_smtp_mode_delivers_the_invitation(app, admin_client, smtp_server):
    client, tenant = admin_client
    response = _invite(client, tenant)
    assert response.status_code == 302
    body = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Invitation sent to {INVITEE}" in body and "outbox" not in body

    [mail] = smtp_server.received
    assert mail["To"] == INVITEE and mail["Subject"] == f"You are invited to {tenant.name}"
    assert mail["From"] == app.config["MAIL_FROM"]
    path = LINK.search(mail.get_content()).group(1)

    [message] = _messages()
    assert message.transport == "smtp" and message.sent_at is not None and message.error is None
    # Staff reading the outbox cannot follow a link that went out by mail.
    assert "/set-password/" not in message.body and "[link sent by mail only]" in message.body

    invitee = app.test_client()
    assert _set_password(invitee, path, NEW_PASSWORD).status_code == 302
    assert invitee.get(f"/t/{tenant.slug}/").status_code == 200


def test_smtp_server_down_adds_no_user_and_says_so(admin_client, smtp_config):
    client, tenant = admin_client
    smtp_config(free_port())  # nothing listens there
    before = _user_count(tenant)
    response = _invite(client, tenant, name="Kept Name")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f"The mail to {INVITEE} could not be sent" in body and "no user was added" in body
    assert 'value="Kept Name"' in body and "has-error" in body
    assert _user_count(tenant) == before and _user(tenant) is None
    # The failed message stays for staff, with the reason.
    [message] = _messages()
    assert message.transport == "smtp" and message.sent_at is None and "Connection" in message.error


def test_reset_with_smtp_down_changes_nothing(app, admin_client, factory, smtp_config):
    client, tenant = admin_client
    member = factory.user(tenant)
    smtp_config(free_port())
    response = _act(client, tenant, member.id, "reset")
    assert response.status_code == 302
    assert "could not be sent" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert _sign_in(app.test_client(), tenant, member.email, PASSWORD).status_code == 302  # old password works


def test_refused_invitations_send_nothing(admin_client, factory):
    client, tenant = admin_client
    factory.user(tenant, email=INVITEE)
    duplicate = _invite(client, tenant)
    assert duplicate.status_code == 400 and "already a user of this tenant" in duplicate.get_data(as_text=True)
    bad_role = _invite(client, tenant, email="other@example.com", role="no-such-role")
    assert bad_role.status_code == 400 and "Choose one of this tenant" in bad_role.get_data(as_text=True)
    while _user_count(tenant) < 10:  # the Basic plan's limit
        factory.user(tenant)
    over = _invite(client, tenant, email="eleventh@example.com")
    assert over.status_code == 400 and "allows 10 users" in over.get_data(as_text=True)
    # Only the first admin's invitation, from when the tenant was made.
    sent = db.session.execute(select(OutboxMessage.to_address).where(OutboxMessage.tenant_id == tenant.id))
    assert sent.scalars().all() == [f"admin@{tenant.slug}.example"]
    assert _user_count(tenant) == 10


def test_resend_sends_a_new_link_and_the_old_one_stops_working(app, admin_client):
    client, tenant = admin_client
    _invite(client, tenant)
    user = _user(tenant)
    first = LINK.search(_messages()[0].body).group(1)
    # From the users list, as an admin would.
    listing = client.get(f"/t/{tenant.slug}/users").get_data(as_text=True)
    response = client.post(f"/t/{tenant.slug}/users/{user.id}/resend", data={"csrf_token": csrf_token(listing)})
    assert response.status_code == 302
    flash = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"{INVITEE}: invitation sent again." in flash and "outbox" in flash
    messages = _messages()
    assert len(messages) == 2 and messages[1].subject == f"You are invited to {tenant.name}"
    second = LINK.search(messages[1].body).group(1)
    assert second != first
    invitee = app.test_client()
    old = invitee.get(first)
    assert old.status_code == 404 and "This link is not valid." in old.get_data(as_text=True)
    assert _set_password(invitee, second, NEW_PASSWORD).status_code == 302


def test_resend_is_refused_once_a_password_is_set(admin_client, factory):
    client, tenant = admin_client
    member = factory.user(tenant)
    response = _act(client, tenant, member.id, "resend")
    assert "already set a password" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert _messages(member.email) == []


def test_reset_mails_a_new_link(app, admin_client, factory):
    client, tenant = admin_client
    member = factory.user(tenant, name="Mia")
    response = _act(client, tenant, member.id, "reset")
    assert response.status_code == 302
    assert "new link sent" in client.get(response.headers["Location"]).get_data(as_text=True)
    [message] = _messages(member.email)
    assert message.subject == f"A new password for {tenant.name}" and "Hello Mia" in message.body
    path = LINK.search(message.body).group(1)
    other = app.test_client()
    assert _sign_in(other, tenant, member.email, PASSWORD).status_code == 401
    assert _set_password(other, path, NEW_PASSWORD).status_code == 302
    assert _sign_in(app.test_client(), tenant, member.email, NEW_PASSWORD).status_code == 302


def test_outbox_pages_list_newest_first_filter_and_show_a_message(app, client, factory):
    from portal.services import mail

    tenant = factory.tenant()
    for n, to in enumerate(("first@outbox.example", "second@outbox.example", "third@elsewhere.example")):
        mail.send(to, f"Message {n}", f"Body {n}: http://localhost/t/{tenant.slug}/set-password/tok{n}",
                  tenant_id=tenant.id)
    db.session.commit()
    viewer = app.test_client()
    sign_in_staff(viewer, factory.staff("viewer"))
    assert viewer.get("/admin/outbox").status_code == 403
    sign_in_staff(client, factory.staff("support"))
    listing = client.get("/admin/outbox").get_data(as_text=True)
    assert listing.index("third@elsewhere.example") < listing.index("second@outbox") < listing.index("first@outbox")
    filtered = client.get("/admin/outbox?to=OUTBOX.example").get_data(as_text=True).split("<tbody>")[1]
    assert "first@outbox" in filtered and "second@outbox" in filtered and "third@" not in filtered
    assert "No messages to nobody@x" in client.get("/admin/outbox?to=nobody@x").get_data(as_text=True)
    saved, app.config["PAGE_SIZE"] = app.config["PAGE_SIZE"], 1
    try:
        second_page = client.get("/admin/outbox?to=outbox.example&page=2").get_data(as_text=True)
    finally:
        app.config["PAGE_SIZE"] = saved
    assert "Page 2 of 2" in second_page and "first@outbox" in second_page and "second@outbox" not in second_page
    [message] = _messages("second@outbox.example")
    # A message's body (a live link, maybe) is for superadmins only, and each read is audited.
    assert client.get(f"/admin/outbox/{message.id}").status_code == 403
    superadmin = factory.staff("superadmin")
    sign_in_staff(client, superadmin)
    page = client.get(f"/admin/outbox/{message.id}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and f"/t/{tenant.slug}/set-password/tok1" in body and tenant.slug in body
    [read] = db.session.execute(select(AuditEvent).where(AuditEvent.action == "outbox.message_read",
                                                         AuditEvent.tenant_id == tenant.id)).scalars().all()
    assert (read.actor_label, read.target) == (superadmin.email, "second@outbox.example")
    assert client.get("/admin/outbox/not-a-uuid").status_code == 404
    assert client.get(f"/admin/outbox/{tenant.id}").status_code == 404


def test_a_disabled_user_s_open_link_is_told_as_running_not_expired(client, factory):
    from datetime import datetime, timedelta, timezone

    from portal.users.services import link_note

    tenant = factory.tenant()
    user = TenantUser(tenant_id=tenant.id, email="x@y.example", password_hash=None, is_active=False,
                      set_password_expires_at=datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc))
    now = datetime(2029, 12, 31, tzinfo=timezone.utc)
    assert link_note(user, now) == "link expires 2030-01-02 03:04 UTC"
    assert link_note(user, now + timedelta(days=5)) == "link expired 2030-01-02 03:04 UTC"
    user.password_hash = "set"
    assert link_note(user, now) is None
