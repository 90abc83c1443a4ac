"""Staff management (issue 15): superadmins list, invite, change the role of, disable,
enable and sign out staff; the rules hold in the service, on the page and in the CLI."""
import re
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, update

from portal.auth.staff_roles import PERMISSIONS
from portal.extensions import db
from portal.models import AuditEvent, OutboxMessage, StaffSession, StaffUser
from portal.services import password_links
from portal.services.errors import Refused
from portal.staff import services
from tests.factories import PASSWORD, csrf_token, sign_in_staff

NEW_PASSWORD = "a brand new staff password 7"


@pytest.fixture()
def runner(app, conn):
    return app.test_cli_runner()


@pytest.fixture()
def sole(factory):
    """The only active superadmin (others the database may hold are disabled, in this
    test's transaction only)."""
    db.session.execute(update(StaffUser).where(StaffUser.role == "superadmin").values(is_active=False))
    db.session.commit()
    return factory.staff("superadmin")


def _post(client, page, url, data=None):
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def _sessions(member):
    return db.session.execute(select(func.count()).select_from(StaffSession)
                              .where(StaffSession.staff_user_id == member.id)).scalar_one()


def _events(action, target):
    return db.session.execute(select(AuditEvent).where(AuditEvent.action == action, AuditEvent.target == target)
                              .order_by(AuditEvent.id)).scalars().all()


def _signed_in(client):
    return client.get("/admin/tenants").status_code == 200


def _signed_out(client):
    answer = client.get("/admin/tenants")
    return answer.status_code == 302 and "/admin/login" in answer.headers["Location"]


def _link_in_outbox(email):
    message = db.session.execute(select(OutboxMessage).where(OutboxMessage.to_address == email)
                                 .order_by(OutboxMessage.created_at.desc())).scalars().first()
    assert message is not None, f"no mail to {email}"
    found = re.search(r"(https?://\S+/admin/set-password/(\S+))", message.body)
    assert found, message.body
    return found.group(1), found.group(2)


def _email():
    return f"new-{uuid.uuid4().hex[:8]}@staff.example"


# -- who may ---------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["operator", "support", "viewer"])
def test_only_superadmins_reach_the_staff_pages(client, factory, role):
    member = factory.staff(role)
    sign_in_staff(client, member)
    for url in ("/admin/staff", "/admin/staff/invite", f"/admin/staff/{member.id}"):
        assert client.get(url).status_code == 403, url
    assert 'href="/admin/staff"' not in client.get("/admin/tenants").get_data(as_text=True)  # no link offered


def test_a_superadmin_sees_every_member_with_state_sign_in_and_sessions(app, client, factory):
    admin, operator = factory.staff("superadmin"), factory.staff("operator")
    invited = services.invite(_email(), "viewer", admin).member
    other = app.test_client()
    sign_in_staff(other, operator)
    sign_in_staff(client, admin)
    page = client.get("/admin/staff")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'href="/admin/staff" aria-current="page"' in body
    row = re.search(rf"<tr>\s*<td><a[^>]*>{re.escape(operator.email)}</a>.*?</tr>", body, re.S).group(0)
    assert ">operator<" in row and ">active<" in row and '<time class="when"' in row and "<td>1</td>" in row
    pending = re.search(rf"<tr>\s*<td><a[^>]*>{re.escape(invited.email)}</a>.*?</tr>", body, re.S).group(0)
    assert ">invited<" in pending and ">never<" in pending and "<td>0</td>" in pending


# -- inviting ----------------------------------------------------------------------------------
def test_an_invitation_lands_in_the_outbox_with_a_link_that_works_once(app, client, factory):
    admin = factory.staff("superadmin")
    sign_in_staff(client, admin)
    email = _email()
    answer = _post(client, "/admin/staff/invite", "/admin/staff/invite",
                   {"email": email, "name": "New Person", "role": "operator"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/staff")
    assert "outbox" in client.get("/admin/staff").get_data(as_text=True)  # the flash says where the mail is
    url, token = _link_in_outbox(email)
    assert url.startswith("http://localhost/admin/set-password/")  # absolute: it leaves the console by mail
    member = db.session.execute(select(StaffUser).where(StaffUser.email == email)).scalar_one()
    assert (member.role, member.name, services.state_of(member)) == ("operator", "New Person", "invited")
    invitee = app.test_client()
    # Before the password is set nobody signs in as them, whatever they type.
    assert member.password_hash is None and member.set_password_token_hash == password_links.digest(token)
    for guess in ("x", token, member.set_password_token_hash):
        before = invitee.post("/admin/login", data={"email": email, "password": guess, "csrf_token": csrf_token(
            invitee.get("/admin/login").get_data(as_text=True))})
        assert before.status_code == 401, guess
    page = invitee.get(f"/admin/set-password/{token}")
    assert page.status_code == 200 and email in page.get_data(as_text=True)
    weak = invitee.post(f"/admin/set-password/{token}", data={
        "password": "short", "confirm": "short", "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert weak.status_code == 400 and 'id="password-error"' in weak.get_data(as_text=True)
    done = invitee.post(f"/admin/set-password/{token}", data={
        "password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/tenants")
    assert _signed_in(invitee)
    again = app.test_client().get(f"/admin/set-password/{token}")  # used: said so (410), as a tenant's link
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)
    assert email not in again.get_data(as_text=True)
    db.session.refresh(member)
    assert services.state_of(member) == "active" and member.last_login_at is not None
    assert _events("staff.invited", email)[0].actor_id == str(admin.id)
    assert _events("staff.password_set", email)[0].actor_id == str(member.id)
    sign_in_staff(app.test_client(), member, NEW_PASSWORD)


def test_an_expired_invitation_says_so_and_a_new_one_replaces_it(app, client, factory):
    admin = factory.staff("superadmin")
    first = services.invite(_email(), "viewer", admin)
    token = first.link.rsplit("/", 1)[1]
    member = first.member
    member.set_password_expires_at = datetime(2000, 1, 1, tzinfo=timezone.utc)
    db.session.commit()
    assert services.state_of(member) == "invitation expired"
    expired = app.test_client().get(f"/admin/set-password/{token}")
    assert expired.status_code == 410 and "expired on 2000-01-01 00:00 UTC" in expired.get_data(as_text=True)
    sign_in_staff(client, admin)
    assert _post(client, f"/admin/staff/{member.id}", f"/admin/staff/{member.id}/resend").status_code == 302
    _, fresh = _link_in_outbox(member.email)
    assert fresh != token and app.test_client().get(f"/admin/set-password/{fresh}").status_code == 200
    assert app.test_client().get(f"/admin/set-password/{token}").status_code == 404  # replaced: nobody's now
    assert _events("staff.invitation_resent", member.email)[0].actor_id == str(admin.id)


@pytest.mark.parametrize("data, field, message", [
    ({"email": "not an email", "role": "viewer"}, "email", "valid email"),
    ({"email": "", "role": "viewer"}, "email", "valid email"),
    ({"email": "fine@staff.example", "role": "king"}, "role", "Role must be one of"),
    ({"email": "DUPLICATE", "role": "viewer"}, "email", "already a staff member"),
    ({"email": "fine@staff.example", "name": "a\x01b", "role": "viewer"}, "name", "control characters"),
])
def test_bad_invitations_are_refused_beside_the_field_and_change_nothing(client, factory, data, field, message):
    admin = factory.staff("superadmin")
    if data["email"] == "DUPLICATE":
        data = {**data, "email": factory.staff("viewer").email.upper()}
    sign_in_staff(client, admin)
    staff_before = db.session.execute(select(func.count()).select_from(StaffUser)).scalar_one()
    mail_before = db.session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one()
    answer = _post(client, "/admin/staff/invite", "/admin/staff/invite", data)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 400
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', body)
    assert error and message in error.group(1), body
    assert 'aria-invalid="true"' in body
    if data["email"] and "\x01" not in data.get("name", ""):
        assert f'value="{data["email"]}"' in body  # the input is kept
    assert db.session.execute(select(func.count()).select_from(StaffUser)).scalar_one() == staff_before
    assert db.session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == mail_before


def test_an_unknown_role_on_a_member_s_page_is_refused_beside_the_field(client, factory):
    admin, operator = factory.staff("superadmin"), factory.staff("operator")
    sign_in_staff(client, admin)
    answer = _post(client, f"/admin/staff/{operator.id}", f"/admin/staff/{operator.id}/role", {"role": "emperor"})
    assert answer.status_code == 400 and 'id="role-error"' in answer.get_data(as_text=True)
    db.session.refresh(operator)
    assert operator.role == "operator"
    assert client.get(f"/admin/staff/{uuid.uuid4()}").status_code == 404
    assert client.get("/admin/staff/not-an-id").status_code == 404


# -- the last superadmin ---------------------------------------------------------------------
def test_the_last_superadmin_cannot_be_demoted_or_disabled(factory, sole):
    for change in (lambda: services.change_role(sole.id, "operator", sole),
                   lambda: services.disable(sole.id, sole),
                   lambda: services.change_role(sole.id, "viewer", services.CLI),
                   lambda: services.disable(sole.id, services.CLI)):
        with pytest.raises(Refused, match="last active superadmin"):
            change()
    db.session.refresh(sole)
    assert (sole.role, sole.is_active) == ("superadmin", True)
    # An invited superadmin who has not set a password yet does not count as a second one.
    services.invite(_email(), "superadmin", sole)
    with pytest.raises(Refused, match="last active superadmin"):
        services.disable(sole.id, sole)
    # With a second active superadmin, either may step down.
    second = factory.staff("superadmin")
    services.change_role(sole.id, "operator", second)
    with pytest.raises(Refused, match="last active superadmin"):
        services.disable(second.id, services.CLI)


def test_the_last_superadmin_rule_on_the_page(client, sole):
    sign_in_staff(client, sole)
    answer = _post(client, f"/admin/staff/{sole.id}", f"/admin/staff/{sole.id}/role", {"role": "operator"})
    assert answer.status_code == 400
    assert re.search(r'id="role-error">[^<]*last active superadmin', answer.get_data(as_text=True))
    refused = _post(client, f"/admin/staff/{sole.id}", f"/admin/staff/{sole.id}/disable")
    assert refused.status_code == 302 and "last active superadmin" in client.get(
        f"/admin/staff/{sole.id}").get_data(as_text=True)
    db.session.refresh(sole)
    assert (sole.role, sole.is_active) == ("superadmin", True) and _signed_in(client)


def test_the_last_superadmin_rule_in_the_cli(runner, sole):
    for args in (["staff", "role", sole.email, "operator"], ["staff", "disable", sole.email]):
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and "last active superadmin" in result.output, result.output
    db.session.refresh(sole)
    assert (sole.role, sole.is_active) == ("superadmin", True)


# -- granting no more than one holds -----------------------------------------------------------
def test_nobody_grants_more_than_they_hold(factory, monkeypatch):
    admin, operator, support, viewer = (factory.staff(r) for r in ("superadmin", "operator", "support", "viewer"))
    # Today only superadmins manage staff: anyone else is refused by the service itself.
    for actor in (operator, support, viewer):
        with pytest.raises(Refused, match="manage staff"):
            services.invite(_email(), "viewer", actor)
        with pytest.raises(Refused, match="manage staff"):
            services.disable(viewer.id, actor)
    # The rule is general: were operators to manage staff, they could grant a role only
    # if theirs holds every permission of it, and act only on such members.
    monkeypatch.setitem(PERMISSIONS, "staff.manage", {"superadmin", "operator"})
    services.check_may_grant(operator, "viewer")
    for role in ("superadmin", "support"):
        with pytest.raises(Refused, match=f"may not grant the {role} role"):
            services.check_may_grant(operator, role)
        with pytest.raises(Refused, match=f"may not grant the {role} role"):
            services.invite(_email(), role, operator)
        with pytest.raises(Refused, match=f"may not grant the {role} role"):
            services.change_role(viewer.id, role, operator)
    assert services.invite(_email(), "viewer", operator).member.role == "viewer"
    for change in (lambda: services.disable(admin.id, operator), lambda: services.end_sessions(support.id, operator),
                   lambda: services.change_role(admin.id, "viewer", operator)):
        with pytest.raises(Refused, match="permissions yours does not hold"):
            change()
    db.session.refresh(admin)
    assert (admin.role, admin.is_active) == ("superadmin", True)


# -- sessions end ------------------------------------------------------------------------------
def test_disabling_signs_them_out_at_once_and_enabling_lets_them_back(app, client, factory):
    admin, member = factory.staff("superadmin"), factory.staff("operator")
    browsers = [app.test_client(), app.test_client()]
    for browser in browsers:
        sign_in_staff(browser, member)
        assert _signed_in(browser)
    sign_in_staff(client, admin)
    page = client.get(f"/admin/staff/{member.id}").get_data(as_text=True)
    assert re.search(rf'action="/admin/staff/{member.id}/disable"[^>]*data-confirm="Disable', page)
    assert _post(client, f"/admin/staff/{member.id}", f"/admin/staff/{member.id}/disable").status_code == 302
    assert _sessions(member) == 0
    for browser in browsers:
        assert _signed_out(browser)
    refused = app.test_client()
    login = refused.post("/admin/login", data={"email": member.email, "password": PASSWORD, "csrf_token": csrf_token(
        refused.get("/admin/login").get_data(as_text=True))})
    assert login.status_code == 401 and "do not match" in login.get_data(as_text=True)
    assert _post(client, f"/admin/staff/{member.id}", f"/admin/staff/{member.id}/enable").status_code == 302
    sign_in_staff(browsers[0], member)
    assert _signed_in(browsers[0]) and _signed_in(client)
    event = _events("staff.disabled", member.email)[0]
    assert (event.actor_id, event.details["sessions_ended"]) == (str(admin.id), 2)
    assert _events("staff.enabled", member.email)[0].actor_id == str(admin.id)


def test_a_demotion_signs_them_out_a_promotion_does_not(app, client, factory):
    admin, member = factory.staff("superadmin"), factory.staff("viewer")
    other = app.test_client()
    sign_in_staff(other, member)
    sign_in_staff(client, admin)
    _post(client, f"/admin/staff/{member.id}", f"/admin/staff/{member.id}/role", {"role": "operator"})
    assert _signed_in(other)  # more permissions: the session goes on, with them
    assert other.get("/admin/jobs").status_code == 200
    answer = _post(client, f"/admin/staff/{member.id}", f"/admin/staff/{member.id}/role", {"role": "viewer"})
    assert answer.status_code == 302 and _signed_out(other)
    events = _events("staff.role_changed", member.email)
    assert [(e.details["from"], e.details["to"], e.actor_id) for e in events] == [
        ("viewer", "operator", str(admin.id)), ("operator", "viewer", str(admin.id))]


def test_ending_someone_s_sessions(app, client, factory):
    admin, member = factory.staff("superadmin"), factory.staff("support")
    other = app.test_client()
    sign_in_staff(other, member)
    sign_in_staff(client, admin)
    assert ">1<" in client.get(f"/admin/staff/{member.id}").get_data(as_text=True)
    assert _post(client, f"/admin/staff/{member.id}", f"/admin/staff/{member.id}/end-sessions").status_code == 302
    assert _signed_out(other) and _signed_in(client)
    sign_in_staff(other, member)  # still active: they sign in again
    assert _events("staff.sessions_ended", member.email)[0].details["sessions_ended"] == 1


def test_refused_changes_leave_no_audit_event(factory, sole):
    with pytest.raises(Refused):
        services.disable(sole.id, sole)
    assert _events("staff.disabled", sole.email) == []


# -- the CLI -----------------------------------------------------------------------------------
def test_the_cli_uses_the_same_rules(app, runner, factory):
    factory.staff("superadmin")
    email = _email()
    invited = runner.invoke(args=["staff", "invite", email, "--role", "support", "--name", "Cli Person"])
    assert invited.exit_code == 0, invited.output
    assert "/admin/set-password/" in invited.output and "outbox" in invited.output
    _link_in_outbox(email)
    listing = runner.invoke(args=["staff", "list"]).output
    assert re.search(rf"{re.escape(email)}\s+support\s+invited\s+never\s+0", listing)
    assert runner.invoke(args=["staff", "role", email, "viewer"]).output.strip() == f"{email}: viewer"
    assert runner.invoke(args=["staff", "disable", email]).exit_code == 0
    assert runner.invoke(args=["staff", "enable", email]).exit_code == 0
    assert runner.invoke(args=["staff", "end-sessions", email]).output.strip() == f"{email}: 0 session(s) ended"
    for args, message in ((["staff", "role", email, "king"], "Role must be one of"),
                          (["staff", "disable", "nobody@staff.example"], "no staff member"),
                          (["staff", "invite", email, "--role", "viewer"], "already a staff member"),
                          (["staff", "invite", "bad", "--role", "viewer"], "valid email")):
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    for action in ("staff.invited", "staff.role_changed", "staff.disabled", "staff.enabled", "staff.sessions_ended"):
        assert _events(action, email)[0].actor_label == "cli", action


def test_an_unknown_link_is_404_and_a_used_one_410(app, factory):
    """As a tenant user's link: a token nobody holds (or too long to be one) is "not valid"
    (404); a used one says so (410), on the page and when posted to."""
    admin = factory.staff("superadmin")
    token = services.invite(_email(), "viewer", admin).link.rsplit("/", 1)[1]
    visitor = app.test_client()
    for unknown in ("not-a-real-link", token[:-1], "x" * 300):
        answer = visitor.get(f"/admin/set-password/{unknown}")
        assert answer.status_code == 404 and "not valid" in answer.get_data(as_text=True), unknown
    member = services.set_password(token, NEW_PASSWORD)
    assert member.set_password_used_at is not None and member.password_hash.startswith("$argon2")
    assert password_links.staff_for_token(db.session, token) == (member, password_links.USED)
    used = visitor.get(f"/admin/set-password/{token}")
    assert used.status_code == 410 and "already been used" in used.get_data(as_text=True)
    with pytest.raises(services.LinkClosed) as closed:
        services.set_password(token, "another good password 9")
    assert closed.value.state == password_links.USED
    db.session.refresh(member)
    sign_in_staff(app.test_client(), member, NEW_PASSWORD)  # the second use changed nothing


def test_a_disabled_member_s_link_is_not_valid(app, factory):
    admin = factory.staff("superadmin")
    invited = services.invite(_email(), "viewer", admin)
    services.disable(invited.member.id, admin)
    token = invited.link.rsplit("/", 1)[1]
    assert app.test_client().get(f"/admin/set-password/{token}").status_code == 404
    services.enable(invited.member.id, admin)
    assert app.test_client().get(f"/admin/set-password/{token}").status_code == 200


def test_an_invited_member_has_no_password(conn):
    """Until the link is used the member's password is NULL: every guess is refused at the
    cost of a real verification (portal/services/passwords.py), and the link's hash is in a
    column of its own."""
    from portal.services.passwords import verify_password

    member = StaffUser(email="x@staff.example", role="viewer")
    token = password_links.open_link(member)
    assert member.password_hash is None and password_links.invitation_expires(member) is not None
    assert password_links.state_of_link(member) == password_links.OPEN
    assert not verify_password(member.password_hash, "")
    assert not verify_password(member.password_hash, token)
