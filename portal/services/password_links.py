"""Set-password links, in one place: made for a tenant user (invitation, reset, a new
tenant's first admin), mailed, and read back when followed.

A link carries a single-use random token; only its SHA-256 is kept on the user, with its
expiry (SET_PASSWORD_LINK_HOURS) and when it was used, so that a used link is told apart
from one nobody was given. Links are absolute: at the address the current request of that
tenant came to; else under PORTAL_PUBLIC_URL (`/t/<slug>/...`); else, from the staff
console, under the console's own address (it serves every tenant's `/t/<slug>/` pages);
else at the tenant's subdomain.
"""
from datetime import datetime, timedelta, timezone

from flask import current_app, has_request_context, request, url_for
from sqlalchemy import select

from portal.services import mail
from portal.services.secret_tokens import digest, new_secret
from portal.tenancy.context import get_current_tenant
from portal.tenancy.data import TenantUser

# What a token is: open, used, or expired.
OPEN, USED, EXPIRED = "open", "used", "expired"


def open_link(user):
    """Give `user` (a TenantUser in an open session) a fresh single-use token; return it.
    The user's earlier link, used or not, stops working."""
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


def user_for_token(session, token, for_update=False):
    """(user, state) for a set-password token of the session's tenant: state OPEN, USED
    or EXPIRED; (None, None) for a token no user of this tenant holds."""
    query = select(TenantUser).where(TenantUser.set_password_token_hash == digest(token))
    user = session.execute(query.with_for_update() if for_update else query).scalar_one_or_none()
    if user is None:
        return None, None
    if user.set_password_used_at is not None:
        return user, USED
    if user.set_password_expires_at < datetime.now(timezone.utc):
        return user, EXPIRED
    return user, OPEN


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
