"""Staff members: one's own sessions (listed, ended one by one or all at once), and the
management of staff by those who hold `staff.manage` (superadmins): list, invite, change a
role, disable, enable, end someone's sessions. The rules live here, for the pages
(portal/staff/routes.py) and `flask staff ...` (portal/cli.py) alike:

- the last active superadmin (one who has set a password) is neither demoted nor disabled;
- nobody grants more than they hold: a role is granted only by an actor whose role holds
  every permission of it, and only such an actor may act on someone of that role;
- disabling, a role with fewer permissions, and "end sessions" delete every session row of
  the member in the same transaction (the user loader reads the row on every request, on
  every process: the next request is signed out) and close their impersonations;
- every change is an audit event, its actor the staff member (or the CLI).
"""
import functools
import uuid
from collections import namedtuple
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.auth.staff_roles import PERMISSIONS
from portal.extensions import db
from portal.models import STAFF_ROLES, OutboxMessage, StaffSession, StaffUser
from portal.services import audit_events, password_links, sessions
from portal.services.errors import NotFound, Refused
from portal.services.passwords import hash_password, password_problem
from portal.services.validation import check_name, normalise_email
from portal.support import services as support

# The actor of `flask staff ...`: the operator of the machine, who holds every permission.
CLI = ("system", None, "cli")


def own_sessions(staff):
    return sessions.staff_sessions(staff.id)


def current_session():
    return sessions.current_hash()


def end_own_session(staff, id_hash):
    """End one of `staff`'s own sessions (another's, or none, is NotFound)."""
    if not id_hash or len(id_hash) != 64 or not sessions.end_staff(staff.id, id_hash):
        raise NotFound(id_hash)
    audit_events.record("staff.session_ended", actor=staff, target=staff.email)
    db.session.commit()


def sign_out_everywhere(staff):
    """End every session of `staff`, this one included (impersonations with them: the
    sign-out signal ends those)."""
    ended = sessions.end_staff(staff.id)
    audit_events.record("staff.signed_out_everywhere", actor=staff, target=staff.email, details={"sessions": ended})
    db.session.commit()
    sessions.end_current()


# -- managing staff --------------------------------------------------------------------------
def _refusal_rolls_back(change):
    """A refused change leaves nothing behind, and lets go of the rows it locked at once."""

    @functools.wraps(change)
    def run(*args, **kwargs):
        try:
            return change(*args, **kwargs)
        except (Refused, NotFound):
            db.session.rollback()
            raise

    return run


StaffRow = namedtuple("StaffRow", "member state sessions")
Invitation = namedtuple("Invitation", "member message link")


def permissions_of(role):
    """Every permission `role` holds (portal/auth/staff_roles.py)."""
    return frozenset(p for p, roles in PERMISSIONS.items() if role in roles)


def _holds(actor):
    """The permissions `actor` holds: an active staff member's role's; the CLI every one."""
    if isinstance(actor, tuple):
        return frozenset(PERMISSIONS)
    return permissions_of(actor.role) if actor.is_active else frozenset()


def _check_manages(actor):
    if "staff.manage" not in _holds(actor):
        raise Refused("Only a staff member who may manage staff can do that.")


def check_may_grant(actor, role, field="role"):
    """Refused unless `role` is a staff role every permission of which `actor` holds."""
    if role not in STAFF_ROLES:
        raise Refused(f"Role must be one of: {', '.join(STAFF_ROLES)}.", field)
    missing = permissions_of(role) - _holds(actor)
    if missing:
        raise Refused(f"You may not grant the {role} role: it holds permissions your role does not "
                      f"({', '.join(sorted(missing))}).", field)


def _check_may_act_on(actor, member, field=None):
    """Acting on someone (role, disable, enable, sessions) needs every permission of their
    role: a lesser role does not lock out a greater one."""
    if permissions_of(member.role) - _holds(actor):
        raise Refused(f"{member.email} is a {member.role}, a role with permissions yours does not hold.", field)


def state_of(member, now=None):
    """"disabled", "invited" (their link is open), "invitation expired" or "active"."""
    if not member.is_active:
        return "disabled"
    expires = password_links.invitation_expires(member)
    if expires is not None:
        return "invited" if expires > (now or datetime.now(timezone.utc)) else "invitation expired"
    return "active"


def list_staff():
    """Every staff member, by email, with their state and live sessions: [StaffRow]. One query."""
    now = datetime.now(timezone.utc)
    idle = timedelta(minutes=current_app.config["STAFF_SESSION_IDLE_MINUTES"])
    live = (select(StaffSession.staff_user_id, func.count().label("n"))
            .where(StaffSession.expires_at > now, StaffSession.last_seen_at > now - idle)
            .group_by(StaffSession.staff_user_id).subquery())
    rows = db.session.execute(select(StaffUser, func.coalesce(live.c.n, 0))
                              .outerjoin(live, live.c.staff_user_id == StaffUser.id)
                              .order_by(StaffUser.email)).all()
    return [StaffRow(member, state_of(member, now), count) for member, count in rows]


def get_member(staff_id):
    """The staff member `staff_id` (a uuid or its text); NotFound for none or a malformed id."""
    try:
        member = db.session.get(StaffUser, uuid.UUID(str(staff_id)))
    except ValueError:
        member = None
    if member is None:
        raise NotFound(str(staff_id)[:64], message="There is no such staff member.")
    return member


def live_sessions(member):
    return len(sessions.staff_sessions(member.id))


def by_email(email):
    """The staff member with `email` (NotFound for none): for the CLI."""
    email = (email or "").strip().lower()
    found = db.session.execute(select(StaffUser).where(func.lower(StaffUser.email) == email)).scalar_one_or_none()
    if found is None:
        raise NotFound(email, message=f"There is no staff member {email}.")
    return found


@_refusal_rolls_back
def invite(email, role, actor, name=""):
    """Add a staff member with `role` and mail them (or keep in the outbox) a link to set
    their password. Returns Invitation(member, OutboxMessage, the link). A mail the
    server refuses invites nobody (Refused, beside the email)."""
    _check_manages(actor)
    email = normalise_email(email, "email")
    name = check_name(name, required=False)
    check_may_grant(actor, role)
    taken = f"{email} is already a staff member."
    if db.session.execute(select(StaffUser.id).where(func.lower(StaffUser.email) == email)).first():
        raise Refused(taken, "email")
    member = StaffUser(email=email, name=name, role=role, is_active=True)
    token = password_links.open_link(member)
    db.session.add(member)
    try:
        db.session.flush()  # two invitations of one address at once: the second fails here
    except IntegrityError:
        db.session.rollback()
        raise Refused(taken, "email") from None
    sender = _sender(actor)
    message = password_links.mail_staff_link(member, token, role, sender)
    if message.error:
        _keep_failed_mail(message)
        raise Refused(f"The mail to {email} could not be sent (our mail server did not accept it), so nobody "
                      f"was invited. Please try again later.", "email")
    audit_events.record("staff.invited", actor=actor, target=email,
                        details={"role": role, "mail": message.transport, "staff_id": str(member.id)})
    db.session.commit()
    return Invitation(member, message, password_links.staff_link_url(token))


def _sender(actor):
    """Who the invitation says it is from: the staff member's name or email (the CLI: nobody)."""
    return "" if isinstance(actor, tuple) else (actor.name or actor.email)


def _keep_failed_mail(message):
    """Undo the change, keep the refused message (with its error) for the outbox page."""
    kept = OutboxMessage(to_address=message.to_address, subject=message.subject, body=message.body,
                         transport=message.transport, created_at=message.created_at, error=message.error)
    db.session.rollback()
    db.session.add(kept)
    db.session.commit()


@_refusal_rolls_back
def resend(staff_id, actor):
    """A new invitation link for a member who has not set a password (the old one stops working)."""
    _check_manages(actor)
    member = _locked(staff_id)
    _check_may_act_on(actor, member)
    if member.password_hash is not None:
        raise Refused(f"{member.email} has already set a password.")
    if not member.is_active:
        raise Refused(f"{member.email} is disabled: enable them first.")
    token = password_links.open_link(member)
    sender = _sender(actor)
    message = password_links.mail_staff_link(member, token, member.role, sender)
    if message.error:
        _keep_failed_mail(message)
        raise Refused(f"The mail to {member.email} could not be sent (our mail server did not accept it), so "
                      f"nothing was changed. Please try again later.")
    audit_events.record("staff.invitation_resent", actor=actor, target=member.email,
                        details={"mail": message.transport, "staff_id": str(member.id)})
    db.session.commit()
    return Invitation(member, message, password_links.staff_link_url(token))


def _locked(staff_id):
    """The member, locked for this transaction and read afresh (the user loader may hold it)."""
    get_member(staff_id)
    return db.session.execute(select(StaffUser).where(StaffUser.id == uuid.UUID(str(staff_id)))
                              .with_for_update().execution_options(populate_existing=True)).scalar_one()


def _lock_active_superadmins():
    """The ids of the active superadmins who have set a password, locked in id order (before
    any other staff row, so that two changes at once wait for each other, never deadlock:
    two superadmins demoting each other at once leave one)."""
    return db.session.execute(
        select(StaffUser.id).where(StaffUser.role == "superadmin", StaffUser.is_active.is_(True),
                                   StaffUser.password_hash.is_not(None))
        .order_by(StaffUser.id).with_for_update()).scalars().all()


def _check_not_last_superadmin(member, superadmins, doing, field=None):
    if member.id in superadmins and len(superadmins) == 1:
        raise Refused(f"{member.email} is the last active superadmin: {doing} them would leave nobody to manage "
                      f"staff. Make another superadmin first.", field)


def _end_sessions(member):
    """End every console session of `member` in this transaction; returns how many."""
    return sessions.end_staff(member.id)


def _after(member, ended_sessions):
    """After the commit: close the member's open impersonations (their tenant sessions)."""
    if ended_sessions is not None:
        support.end_all_for_staff(member.id, cause="revoked")


@_refusal_rolls_back
def change_role(staff_id, role, actor):
    """Give member `staff_id` `role`. A role with fewer permissions ends their sessions."""
    _check_manages(actor)
    check_may_grant(actor, role)
    superadmins = _lock_active_superadmins()
    member = _locked(staff_id)
    _check_may_act_on(actor, member, "role")
    if member.role == role:
        raise Refused(f"{member.email} is already a {role}.", "role")
    fewer = bool(permissions_of(member.role) - permissions_of(role))
    if fewer:
        _check_not_last_superadmin(member, superadmins, "demoting", "role")
    old = member.role
    member.role = role
    ended = _end_sessions(member) if fewer else None
    audit_events.record("staff.role_changed", actor=actor, target=member.email,
                        details={"from": old, "to": role, "staff_id": str(member.id), "sessions_ended": ended or 0})
    db.session.commit()
    _after(member, ended)
    return member


@_refusal_rolls_back
def disable(staff_id, actor):
    """Disable member `staff_id`: they cannot sign in, and every session of theirs ends."""
    _check_manages(actor)
    superadmins = _lock_active_superadmins()
    member = _locked(staff_id)
    _check_may_act_on(actor, member)
    if not member.is_active:
        raise Refused(f"{member.email} is already disabled.")
    _check_not_last_superadmin(member, superadmins, "disabling")
    member.is_active = False
    ended = _end_sessions(member)
    audit_events.record("staff.disabled", actor=actor, target=member.email,
                        details={"staff_id": str(member.id), "sessions_ended": ended})
    db.session.commit()
    _after(member, ended)
    return member


@_refusal_rolls_back
def enable(staff_id, actor):
    """Enable member `staff_id` again: they may sign in (or follow an open invitation)."""
    _check_manages(actor)
    member = _locked(staff_id)
    _check_may_act_on(actor, member)
    if member.is_active:
        raise Refused(f"{member.email} is already active.")
    member.is_active = True
    audit_events.record("staff.enabled", actor=actor, target=member.email, details={"staff_id": str(member.id)})
    db.session.commit()
    return member


@_refusal_rolls_back
def end_sessions(staff_id, actor):
    """End every session of member `staff_id` (and their impersonations); returns how many."""
    _check_manages(actor)
    member = _locked(staff_id)
    _check_may_act_on(actor, member)
    ended = _end_sessions(member)
    audit_events.record("staff.sessions_ended", actor=actor, target=member.email,
                        details={"staff_id": str(member.id), "sessions_ended": ended})
    db.session.commit()
    _after(member, ended)
    return ended


class LinkClosed(Exception):
    """A set-password link that does not work (any more): state None (unknown, or its
    holder disabled), password_links.USED or password_links.EXPIRED; `member` its holder."""

    def __init__(self, state, member=None):
        super().__init__(state)
        self.state = state
        self.member = member


def set_password(token, password):
    """Follow an invitation once: set the member's password (the rules of a tenant
    user's) and mark the link used. Returns the member. Refused (beside the password) for a
    weak one, the link then still open; LinkClosed when it no longer works."""
    member, state = password_links.staff_for_token(db.session, token, for_update=True)  # two submissions: one wins
    if state != password_links.OPEN:
        db.session.rollback()
        raise LinkClosed(state, member)
    problem = password_problem(password, member.email)
    if problem:
        db.session.rollback()
        raise Refused(problem, "password")
    member.password_hash = hash_password(password)
    password_links.mark_used(member)
    member.last_login_at = datetime.now(timezone.utc)
    sessions.end_staff(member.id)
    audit_events.record("staff.password_set", actor=member, target=member.email,
                        details={"staff_id": str(member.id)})
    db.session.commit()
    return member
