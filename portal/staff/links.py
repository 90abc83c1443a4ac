"""Set-password links of staff members: made when one is invited, mailed (or kept in the
outbox) as a tenant user's invitation is, and followed at the console's
`/admin/set-password/<token>` (auth.staff_set_password).

An invited staff member has no password yet. Until they choose one, their `password_hash`
holds the link instead: `!link$<SHA-256 of the token>$<expiry, ISO 8601>`. No password
verifies against that (it is no Argon2 hash: portal/services/passwords.py refuses it at
the cost of a real check), so an invitee cannot sign in; setting the password replaces it,
so the link works once. The token itself is kept nowhere. (Kept in the existing column
rather than new ones: staff invitations needed no migration. A used link and a link
nobody was given are therefore told apart by nobody: both are "not valid".)
"""
from datetime import datetime, timedelta, timezone

from flask import current_app, has_request_context, url_for
from sqlalchemy import select

from portal.models import StaffUser
from portal.services import mail
from portal.services.secret_tokens import digest, new_secret
from portal.tenancy.context import get_current_tenant

PENDING = "!link$"
OPEN, EXPIRED = "open", "expired"


def open_link(staff):
    """Give `staff` (no password yet, or a new invitation) a fresh single-use token and
    return it; the earlier link stops working. The caller commits."""
    token = new_secret()
    expires = datetime.now(timezone.utc) + timedelta(hours=current_app.config["SET_PASSWORD_LINK_HOURS"])
    staff.password_hash = f"{PENDING}{digest(token)}${expires.isoformat(timespec='seconds')}"
    return token


def is_pending(staff):
    """Whether `staff` was invited and has not chosen a password yet."""
    return (staff.password_hash or "").startswith(PENDING)


def link_expires(staff):
    """When the open invitation of `staff` expires (None without one)."""
    if not is_pending(staff):
        return None
    return datetime.fromisoformat(staff.password_hash.rsplit("$", 1)[1])


def staff_for_token(session, token, for_update=False):
    """(staff, OPEN or EXPIRED) for a token an active, invited staff member holds; else
    (None, None): unknown, used (the password is set), or its holder disabled."""
    if not token or len(token) > 200:
        return None, None
    query = select(StaffUser).where(StaffUser.password_hash.startswith(f"{PENDING}{digest(token)}$", autoescape=True))
    staff = session.execute(query.with_for_update() if for_update else query).scalar_one_or_none()
    if staff is None or not staff.is_active:
        return None, None
    return staff, (OPEN if link_expires(staff) > datetime.now(timezone.utc) else EXPIRED)


def link_url(token):
    """The absolute link for `token`: at the address of the console request that made it;
    else under PORTAL_PUBLIC_URL (the console's address); else at admin.<base domain>."""
    if has_request_context() and get_current_tenant() is None:
        return url_for("auth.staff_set_password", invitation=token, _external=True)
    cfg = current_app.config
    if cfg["PORTAL_PUBLIC_URL"]:
        return f"{cfg['PORTAL_PUBLIC_URL'].rstrip('/')}/admin/set-password/{token}"
    return f"{cfg['PREFERRED_URL_SCHEME']}://admin.{cfg['PORTAL_BASE_DOMAIN']}/admin/set-password/{token}"


def mail_link(staff, token, role, sender=""):
    """Mail `staff` their invitation to the console (or keep it in the outbox). Returns
    the OutboxMessage; its `error` says why a mail server refused it."""
    who = sender or "A superadmin"
    expires = link_expires(staff).strftime("%Y-%m-%d %H:%M UTC")
    body = (f"Hello {staff.name or staff.email},\n\n{who} invited you to the Tenancy Portal staff console "
            f"as {role}. Choose your password to sign in:\n\n{link_url(token)}\n\n"
            f"The link works once and expires on {expires}.\n")
    return mail.send(staff.email, "You are invited to the Tenancy Portal staff console", body)
