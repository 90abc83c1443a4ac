from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.analytics.events import acting_user_key, track_event
from portal.auth.tenant_roles import permissions_of
from portal.extensions import db
from portal.roles.services import check_assignable, check_may_take
from portal.services import audit_events, entitlements, password_links, sessions
from portal.services.errors import NotFound, Refused
from portal.services.rows import tenant_row
from portal.services.validation import check_name, normalise_email
from portal.tenancy.context import require_tenant
from portal.tenancy.data import TenantRole, TenantUser
from portal.tenancy.placement import tenant_session, tenant_transaction


def list_users():
    with tenant_session() as session:
        return session.execute(select(TenantUser).order_by(TenantUser.email)).scalars().all()


def custom_role_names():
    """{key: name} of the tenant's own roles: what the users pages show for a custom role
    (a built-in role shows as its key: admin, member, viewer)."""
    with tenant_session() as session:
        return dict(session.execute(select(TenantRole.key, TenantRole.name)).all())


def get_user(user_id):
    with tenant_session() as session:
        return tenant_row(session, TenantUser, user_id)


def count_users(session):
    return session.execute(select(func.count()).select_from(TenantUser)).scalar_one()


class MailNotSent(Exception):
    """The mail server did not take the message: the change that needed it is undone."""


def _mail_link(session, user, actor, kind):
    """Open and mail `user` a set-password link (kind "invitation" or "reset") before the
    change commits; raise MailNotSent when the mail server refuses it, so the caller's
    transaction rolls back: no invited user who never got the link, no reset password
    without a way back. (The transaction stays open for the SMTP exchange, at most the
    mail timeout; a commit failing after a delivered mail leaves a link that says "not valid".)"""
    token = password_links.open_link(user)
    session.flush()  # a duplicate email fails here, before any mail goes out
    sender = getattr(actor, "name", "") or getattr(actor, "email", "")
    message = password_links.mail_link(require_tenant(), user, token, kind, sender)
    if message.error:
        raise MailNotSent(message)
    return message


def _not_sent(email, undone):
    # The failed message stays on the staff outbox page with its error; the admin is
    # told what happened in words, without the mail server's details.
    db.session.commit()
    return Refused(f"The mail to {email} could not be sent (our mail server did not accept it), so {undone}. "
                   f"Please try again later.", "email")


def add_user(email, name, role, actor):
    """Invite a user to the current tenant: add them and mail them a set-password link.
    Returns (user, the OutboxMessage). A mail the server refuses adds no user (Refused)."""
    tenant = require_tenant()
    email = normalise_email(email, "email")
    name = check_name(name, required=False)
    granted = entitlements.current()
    max_users = granted.limit("max_users")
    try:
        with tenant_transaction() as session:
            check_assignable(session, actor, role)
            if session.execute(select(TenantUser.id).where(TenantUser.email == email)).first():
                raise Refused(f"{email} is already a user of this tenant.", "email")
            users = count_users(session)
            if max_users is not None and users >= max_users:
                raise Refused(f"The {granted.plan_name} plan allows {max_users} users and this tenant has {users}.",
                              "email")
            user = TenantUser(tenant_id=tenant.id, email=email, name=name, role=role)
            session.add(user)
            message = _mail_link(session, user, actor, "invitation")
    except IntegrityError:
        raise Refused(f"{email} is already a user of this tenant.", "email") from None
    except MailNotSent:
        raise _not_sent(email, "no user was added") from None
    audit_events.record("tenant_user.added", actor=actor, tenant_id=tenant.id, target=email,
                        details={"role": role, "mail": message.transport})
    db.session.commit()
    track_event("user_invited", acting_user_key(), {"role": role})
    return user, message


def _other_active_admins(session, user):
    return session.execute(select(func.count()).select_from(TenantUser).where(
        TenantUser.role == "admin", TenantUser.is_active.is_(True), TenantUser.id != user.id)).scalar_one()


# The analytics event each change of a user becomes (portal/analytics/events.py).
USER_EVENTS = {"remove": "user_removed", "disable": "user_disabled", "enable": "user_enabled",
               "role": "user_role_changed", "reset": "user_password_reset", "resend": "user_invitation_resent"}


def change_user(user_id, action, actor, role=None):
    """disable, enable, remove, reset the password of, resend the invitation of, or give
    `role` to a user of the current tenant. Refused: acting on yourself, leaving the tenant
    without an active admin, a role the actor could not grant, resending to a user who has
    a password, or a mail the server refuses (then nothing changed). Returns (user email,
    the OutboxMessage of a reset or resend, else None)."""
    tenant = require_tenant()
    message = details = None
    try:
        with tenant_transaction() as session:
            user = tenant_row(session, TenantUser, user_id)
            if user.id == actor.id:
                raise Refused("You cannot do that to your own account.")
            leaves_admins = action in ("disable", "remove") or (action == "role" and role != "admin")
            if leaves_admins and user.role == "admin" and user.is_active and not _other_active_admins(session, user):
                raise Refused("This is the tenant's last active admin: make another admin first.")
            # Acting on someone (disabling, resetting, removing, changing their role) needs
            # all their role grants: a lesser role does not lock out a greater one.
            check_may_take(session, actor, user.role)
            email = user.email
            if action == "disable":
                user.is_active = False
                sessions.end_tenant_user(session, user.id)
            elif action == "enable":
                user.is_active = True
            elif action == "remove":
                session.delete(user)
                sessions.end_tenant_user(session, user.id)
            elif action == "role":
                check_assignable(session, actor, role)
                details = {"from": user.role, "to": role}
                if permissions_of(session, user.role) - permissions_of(session, role):
                    sessions.end_tenant_user(session, user.id)  # fewer rights: signed in afresh
                user.role = role
            elif action == "reset":
                # The old password stops working at once, and every session with it; the
                # new link sets another.
                user.password_hash = None
                sessions.end_tenant_user(session, user.id)
                message = _mail_link(session, user, actor, "reset")
            elif action == "resend":
                if user.password_hash is not None:
                    raise Refused(f"{email} has already set a password: use Reset password instead.")
                # A new link: the one sent before stops working.
                message = _mail_link(session, user, actor, "invitation")
            else:
                raise NotFound(action)
    except MailNotSent:
        raise _not_sent(email, "nothing was changed") from None
    if message is not None:
        details = {"mail": message.transport}
    audit_events.record(f"tenant_user.{action}", actor=actor, tenant_id=tenant.id, target=email,
                        details=details)
    db.session.commit()
    track_event(USER_EVENTS[action], acting_user_key())
    return email, message


def state_of(user, now=None):
    """How the users pages name a user's state: "disabled", "invited" (their link is open),
    "invitation expired" or "active"."""
    if not user.is_active:
        return "disabled"
    if user.password_hash is None:
        expires = user.set_password_expires_at
        running = expires is not None and expires > (now or datetime.now(timezone.utc))
        return "invited" if running else "invitation expired"
    return "active"


def link_note(user, now=None):
    """"link expires <when>" or "link expired <when>" for a user with no password yet and
    a set-password link; else None. (Told by the date: a disabled user's link may still run.)"""
    expires = user.set_password_expires_at
    if user.password_hash is not None or expires is None:
        return None
    verb = "expires" if expires > (now or datetime.now(timezone.utc)) else "expired"
    return f"link {verb} {expires:%Y-%m-%d %H:%M} UTC"
