"""Set-password links, in one place, for both kinds of user: made for a tenant user
(invitation, reset, a new tenant's first admin) or a staff member (invitation to the
console), mailed, and read back when followed.

A link carries a single-use random token; only its SHA-256 is kept on the user (a
TenantUser or a StaffUser: both have the columns `set_password_token_hash`,
`set_password_expires_at`, `set_password_used_at`), with its expiry
(SET_PASSWORD_LINK_HOURS) and when it was used, so that a used link is told apart from one
nobody was given. Links are absolute. A tenant user's: at the address the current request
of that tenant came to; else under PORTAL_PUBLIC_URL (`/t/<slug>/...`); else, from the
staff console, under the console's own address (it serves every tenant's `/t/<slug>/`
pages); else at the tenant's subdomain. A staff member's (`/admin/set-password/<token>`):
at the console's address the request came to; else under PORTAL_PUBLIC_URL; else at
`admin.<base domain>`.
"""
from datetime import datetime, timedelta, timezone

from flask import current_app, has_request_context, request, url_for
from sqlalchemy import select

from portal.models import StaffUser
from portal.services import mail
from portal.services.secret_tokens import digest, new_secret
from portal.tenancy.context import get_current_tenant
from portal.tenancy.data import TenantUser

# What a token is: open, used, or expired.
OPEN, USED, EXPIRED = "open", "used", "expired"
# No token we make is longer (new_secret: 43 characters); a longer one is nobody's.
MAX_TOKEN = 200


def open_link(user):
    """Give `user` (a TenantUser or StaffUser in an open session) a fresh single-use
    token; return it. The user's earlier link, used or not, stops working. The caller
    commits."""
    token = new_secret()
    user.set_password_token_hash = digest(token)
    user.set_password_expires_at = datetime.now(timezone.utc) + timedelta(
        hours=current_app.config["SET_PASSWORD_LINK_HOURS"])
    user.set_password_used_at = None
    return token


def link_url(tenant, token):
    """The absolute link for `token` of `tenant`. (A staff request knows no tenant:
    url_for would give the console's /set-password/..., which no tenant answers.)"""
    here = get_current_tenant() if has_request_context() else None
    if here is not None and here.id == tenant.id:
        return url_for("auth.tenant_set_password", token=token, _external=True)
    cfg = current_app.config
    if cfg["PORTAL_PUBLIC_URL"]:
        return f"{cfg['PORTAL_PUBLIC_URL'].rstrip('/')}/t/{tenant.slug}/set-password/{token}"
    if has_request_context():
        return f"{request.host_url.rstrip('/')}/t/{tenant.slug}/set-password/{token}"
    return f"{cfg['PREFERRED_URL_SCHEME']}://{tenant.slug}.{cfg['PORTAL_BASE_DOMAIN']}/set-password/{token}"


def mark_used(user):
    """The link of `user` has been used: it stays known (a second visit says "used")."""
    user.set_password_used_at = datetime.now(timezone.utc)


def state_of_link(user, now=None):
    """OPEN, USED or EXPIRED: the state of the link `user` holds (one they hold)."""
    if user.set_password_used_at is not None:
        return USED
    if user.set_password_expires_at < (now or datetime.now(timezone.utc)):
        return EXPIRED
    return OPEN


def invitation_expires(user):
    """When the open invitation of `user` (no password yet) expires, or expired; None for
    a user with a password or without a link."""
    if user.password_hash is not None or user.set_password_token_hash is None:
        return None
    return user.set_password_expires_at


def _holder(session, model, token, for_update):
    if not token or len(token) > MAX_TOKEN:
        return None
    query = select(model).where(model.set_password_token_hash == digest(token))
    return session.execute(query.with_for_update() if for_update else query).scalar_one_or_none()


def user_for_token(session, token, for_update=False):
    """(user, state) for a set-password token of the session's tenant: state OPEN, USED
    or EXPIRED; (None, None) for a token no user of this tenant holds."""
    user = _holder(session, TenantUser, token, for_update)
    return (None, None) if user is None else (user, state_of_link(user))


def staff_for_token(session, token, for_update=False):
    """(staff member, state) for a set-password token of the console: state OPEN, USED or
    EXPIRED; (None, None) for a token no staff member holds, or one a disabled member
    holds (their link does not work: said as "not valid", nothing about them shown)."""
    member = _holder(session, StaffUser, token, for_update)
    if member is None or not member.is_active:
        return None, None
    return member, state_of_link(member)


def staff_link_url(token):
    """The absolute link for a staff member's `token`: at the address of the console
    request that made it; else under PORTAL_PUBLIC_URL (the console's address); else at
    admin.<base domain>."""
    if has_request_context() and get_current_tenant() is None:
        return url_for("auth.staff_set_password", invitation=token, _external=True)
    cfg = current_app.config
    if cfg["PORTAL_PUBLIC_URL"]:
        return f"{cfg['PORTAL_PUBLIC_URL'].rstrip('/')}/admin/set-password/{token}"
    return f"{cfg['PREFERRED_URL_SCHEME']}://admin.{cfg['PORTAL_BASE_DOMAIN']}/admin/set-password/{token}"


def mail_link(tenant, user, token, kind, sender=""):
    """Mail `user` of `tenant` their link: kind "invitation" or "reset", from `sender` (a
    name or address; an admin when blank). Returns the OutboxMessage; its `error` says
    why a mail server refused it."""
    who = sender or "An admin"
    expires = user.set_password_expires_at.strftime("%Y-%m-%d %H:%M UTC")
    if kind == "invitation":
        subject = f"You are invited to {tenant.name}"
        opening = f"{who} invited you to {tenant.name}. Choose your password to sign in:"
    else:
        subject = f"A new password for {tenant.name}"
        opening = (f"{who}, an admin of {tenant.name}, asked for a new password for your account; the "
                   f"old one no longer works. Choose a new password here:")
    body = (f"Hello {user.name or user.email},\n\n{opening}\n\n{link_url(tenant, token)}\n\n"
            f"The link works once and expires on {expires}.\n")
    return mail.send(user.email, subject, body, tenant_id=tenant.id)


def mail_staff_link(member, token, role, sender=""):
    """Mail staff `member` their invitation to the console as `role` (or keep it in the
    outbox), from `sender` (a superadmin when blank). Returns the OutboxMessage; its
    `error` says why a mail server refused it."""
    who = sender or "A superadmin"
    expires = member.set_password_expires_at.strftime("%Y-%m-%d %H:%M UTC")
    body = (f"Hello {member.name or member.email},\n\n{who} invited you to the Tenancy Portal staff console "
            f"as {role}. Choose your password to sign in:\n\n{staff_link_url(token)}\n\n"
            f"The link works once and expires on {expires}.\n")
    return mail.send(member.email, "You are invited to the Tenancy Portal staff console", body)
