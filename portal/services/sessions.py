"""Sessions kept on the server, in both realms: a sign-in is a row, and it ends when the row goes.

Flask's signed cookie carries `sid`, a random secret made at sign-in; only its SHA-256 is
stored. A staff session is a row of `registry.staff_sessions`; a tenant user's is a row
of the tenant's own `sessions` table (every tier, under the same row-level security, so it
moves with the tenant). The user loader (portal/auth/principals.py) accepts a cookie only
while its row is there and in time, so a copy of a cookie is worth nothing once the
session it carries has ended:

- signing out deletes that session's row;
- a password set or reset, disabling, removal, and a role with fewer rights delete every
  row of that user, in the same transaction as the change;
- a tenant's suspension ends all its sessions by its session epoch (one number in the
  registry, checked on every request, so that no tenant storage is touched);
- staff sessions also end after STAFF_SESSION_IDLE_MINUTES without a request and
  STAFF_SESSION_HOURS after sign-in; a staff member may end their own, one or all.

Signing in starts from an empty cookie: the CSRF secret and the session id are new.
Why rows in PostgreSQL rather than Redis: a revocation commits with the change that
causes it (no window where the password is changed and the old session still works),
the tenant loader reads its row in the query that reads the user (no extra round trip),
and sessions survive a Redis outage and a tenant's move. docs/security.md says more.
"""
import functools
import uuid
from datetime import datetime, timedelta, timezone

from flask import current_app, request, session
from flask_login import login_user, logout_user
from sqlalchemy import bindparam, delete, select, update

from portal.extensions import db
from portal.models import StaffSession, StaffUser
from portal.services.secret_tokens import digest, new_secret
from portal.tenancy.context import get_current_tenant
from portal.tenancy.data import TenantSession, TenantUser
from portal.tenancy.placement import tenant_transaction

SID = "sid"
# A staff session's last use is written at most this often (idle timeout precision).
TOUCH_SECONDS = 60


def _now():
    return datetime.now(timezone.utc)


def _client():
    """Where a sign-in came from, as the sessions page shows it."""
    return request.remote_addr, (request.user_agent.string or "")[:200] or None


def _fresh_cookie(user):
    """Sign `user` in on an empty cookie: whatever it held (a CSRF secret, an earlier
    session id) is gone. Returns the new session secret."""
    session.clear()
    login_user(user)
    sid = session[SID] = new_secret()
    return sid


# -- starting ------------------------------------------------------------------------------
def start_staff(user):
    cfg = current_app.config
    sid = _fresh_cookie(user)
    ip, agent = _client()
    now = _now()
    db.session.add(StaffSession(id_hash=digest(sid), staff_user_id=user.id, created_at=now, last_seen_at=now,
                                expires_at=now + timedelta(hours=cfg["STAFF_SESSION_HOURS"]), ip=ip,
                                user_agent=agent))
    db.session.commit()


def start_tenant(tenant, principal, expires_at, impersonation_id=None):
    """Sign `principal` (a TenantPrincipal) in to `tenant`'s pages until `expires_at`."""
    sid = _fresh_cookie(principal)
    session["epoch"] = tenant.session_epoch
    ip, agent = _client()
    with tenant_transaction(tenant) as data:
        data.add(TenantSession(tenant_id=tenant.id, id_hash=digest(sid), user_id=principal.id,
                               expires_at=expires_at, ip=ip, user_agent=agent, impersonation_id=impersonation_id))


# -- the user loader's checks --------------------------------------------------------------
def staff_user(user_id):
    """The staff user of this cookie's session, if the session is live; else None (and
    a lapsed session's row is gone)."""
    sid = session.get(SID)
    if not sid:
        return None
    found = db.session.execute(
        select(StaffUser, StaffSession).join(StaffSession, StaffSession.staff_user_id == StaffUser.id)
        .where(StaffSession.id_hash == digest(sid), StaffUser.id == user_id)).first()
    if found is None or not found[0].is_active:
        return None
    user, row = found
    now = _now()
    idle = timedelta(minutes=current_app.config["STAFF_SESSION_IDLE_MINUTES"])
    if row.expires_at <= now or row.last_seen_at + idle <= now:
        db.session.delete(row)
        db.session.commit()
        return None
    if (now - row.last_seen_at).total_seconds() >= TOUCH_SECONDS:
        db.session.execute(update(StaffSession).where(StaffSession.id_hash == row.id_hash).values(last_seen_at=now))
        db.session.commit()
    return user


# What the user loader reads of a signed-in tenant user (portal/auth/principals.py): not the
# whole row (its password hash, its tokens), which would cost the statement's planning and
# an ORM object for nothing.
PRINCIPAL_COLUMNS = (TenantUser.id, TenantUser.tenant_id, TenantUser.email, TenantUser.name, TenantUser.role,
                     TenantUser.is_active)


def tenant_user(data, user_id, *beside):
    """The row (PRINCIPAL_COLUMNS of the tenant user, then the values of `beside`) of this
    cookie's session, read through `data` (a session on the tenant) with the session's row
    in one query, if the session is live; else None. `beside`: columns read in the same
    statement (the user loader's layout settings)."""
    sid = session.get(SID)
    if not sid:
        return None
    return data.execute(_tenant_user_statement(beside),
                        {"id_hash": digest(sid), "user_id": user_id, "now": _now()}).one_or_none()


@functools.lru_cache(maxsize=8)
def _tenant_user_statement(beside):
    """`tenant_user`'s statement, made once for each `beside` (the same columns each time:
    `tenant_settings.as_column` is made once too): SQLAlchemy computes a statement's cache
    key on every execution unless the statement is the same object (~0.1 ms a page)."""
    return (select(*PRINCIPAL_COLUMNS, *beside).join(TenantSession, TenantSession.user_id == TenantUser.id)
            .where(TenantSession.id_hash == bindparam("id_hash"), TenantUser.id == bindparam("user_id"),
                   TenantSession.expires_at > bindparam("now")))


# -- ending ----------------------------------------------------------------------------------
def end_current():
    """Sign out here: this cookie's session ends on the server, and the cookie is emptied."""
    sid, tenant = session.get(SID), get_current_tenant()
    logout_user()  # first, while the session still stands: its signal needs the user (support/impersonation.py)
    if sid and tenant is None:
        db.session.execute(delete(StaffSession).where(StaffSession.id_hash == digest(sid)))
        db.session.commit()
    elif sid:
        with tenant_transaction(tenant) as data:
            data.execute(delete(TenantSession).where(TenantSession.id_hash == digest(sid)))
    session.clear()


def end_tenant_user(data, user_id):
    """End every session of a tenant user (or of the users a select of ids gives), in
    `data`'s transaction: the caller's change."""
    if isinstance(user_id, uuid.UUID):
        data.execute(delete(TenantSession).where(TenantSession.user_id == user_id))
    else:
        data.execute(delete(TenantSession).where(TenantSession.user_id.in_(user_id.scalar_subquery())))


def end_staff(staff_id, id_hash=None):
    """End one session of a staff member (`id_hash`), or all of them; the caller commits.
    Returns how many ended."""
    query = delete(StaffSession).where(StaffSession.staff_user_id == staff_id)
    if id_hash is not None:
        query = query.where(StaffSession.id_hash == id_hash)
    return db.session.execute(query).rowcount


def current_hash():
    sid = session.get(SID)
    return digest(sid) if sid else None


def staff_sessions(staff_id):
    """A staff member's live sessions, newest first."""
    now = _now()
    idle = timedelta(minutes=current_app.config["STAFF_SESSION_IDLE_MINUTES"])
    return db.session.execute(
        select(StaffSession).where(StaffSession.staff_user_id == staff_id, StaffSession.expires_at > now,
                                   StaffSession.last_seen_at > now - idle)
        .order_by(StaffSession.created_at.desc())).scalars().all()
