"""Support impersonation: start (staff console), enter (the handoff onto the tenant's
pages), each request audited, and the ends (End, sign-out, expiry).

An impersonation is a registry row (portal/models/impersonation.py). The staff member
reaches the tenant's pages through a single-use handoff token (only its SHA-256 is
kept), because the staff session cookie is not the tenant realm's and the tenant may be
on another host. Every event is written to the tenant's own audit log (tenant_id set)
with the staff member as the actor.
"""
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from portal.auth.principals import TenantPrincipal, impersonation_view
from portal.extensions import db
from portal.models import Impersonation, StaffUser, Tenant
from portal.services import audit_events, tenant_settings
from portal.services.errors import NotFound, Refused
from portal.services.rows import tenant_row
from portal.services.secret_tokens import digest, new_secret
from portal.services.validation import check_text
from portal.tenancy.context import TenantRef
from portal.tenancy.data import TenantUser
from portal.tenancy.placement import tenant_session

MAX_MINUTES = 60
HANDOFF_SECONDS = 120  # the handoff link works this long after the start, once
OVERRIDE_ROLE = "superadmin"  # the one staff role that may go in where support access is off
SYSTEM = ("system", None, "system")

TOO_LONG = f"An impersonation lasts from 1 to {MAX_MINUTES} minutes."
NO_REASON = "Give the reason for looking into this account."
NO_TICKET = "Give the ticket reference."
NO_WRITE_REASON = "Give the reason write access is needed, or leave write access off."
ACCESS_OFF = "This tenant has turned support access off; ask its admin to turn it on in their settings."
NEEDS_OVERRIDE = "This tenant has turned support access off. To go in anyway, give your reason for overriding it."
LINK_NOT_VALID = "This impersonation link has expired or has already been used."
NOT_YOURS_TO_OVERRIDE = f"Only a {OVERRIDE_ROLE} may go in where the tenant has turned support access off."


def _now():
    return datetime.now(timezone.utc)


def users_to_impersonate(tenant):
    """The tenant's active users, by email: whom an impersonation may look through."""
    with tenant_session(TenantRef.of(tenant)) as data:
        return data.execute(
            select(TenantUser).where(TenantUser.is_active.is_(True)).order_by(TenantUser.email)
        ).scalars().all()


def support_access(tenant):
    """Whether the tenant lets support staff in (its setting `support_access`)."""
    return bool(tenant_settings.of(TenantRef.of(tenant))["support_access"])


def may_override(staff):
    return staff.role == OVERRIDE_ROLE


def start(tenant, user_id, staff, *, reason, ticket, minutes, write=False, write_reason="", override_reason=""):
    """Open an impersonation of `user_id` (a user of `tenant`) by `staff`; return
    (impersonation, handoff token). Bad input raises Refused (with its field), a user not
    of this tenant NotFound; either way nothing is written."""
    if minutes is None or not 1 <= minutes <= MAX_MINUTES:
        raise Refused(TOO_LONG, "minutes")
    reason = check_text(reason, "reason", "a reason", 2000, multiline=True, missing=NO_REASON)
    ticket = check_text(ticket, "ticket", "a ticket reference", 64, missing=NO_TICKET)
    write_reason = check_text(write_reason, "write_reason", "a reason", 2000, required=write, multiline=True,
                              missing=NO_WRITE_REASON)
    override_reason = check_text(override_reason, "override_reason", "a reason", 2000, required=False,
                                 multiline=True)
    if override_reason and not may_override(staff):
        raise Refused(NOT_YOURS_TO_OVERRIDE, "override_reason")
    if tenant.status != "active":
        raise Refused("Only an active tenant's pages can be looked into.")
    ref = TenantRef.of(tenant)
    with tenant_session(ref) as data:  # the user and the tenant's consent, in one transaction
        user = tenant_row(data, TenantUser, user_id, ref)
        access = tenant_settings.read(data)["support_access"]
    if not user.is_active:
        raise NotFound(user_id)
    if access:
        override_reason = ""  # nothing to override
    elif not override_reason:
        raise Refused(NEEDS_OVERRIDE if may_override(staff) else ACCESS_OFF,
                      "override_reason" if may_override(staff) else None)

    token, now = new_secret(), _now()
    row = Impersonation(
        tenant_id=tenant.id, staff_user_id=staff.id, staff_email=staff.email, user_id=user.id,
        user_email=user.email, reason=reason, ticket=ticket, minutes=minutes,
        write_reason=write_reason if write else None, override_reason=override_reason or None,
        handoff_hash=digest(token), started_at=now, expires_at=now + timedelta(minutes=minutes),
    )
    db.session.add(row)
    db.session.flush()
    details = {"impersonation_id": str(row.id), "user_id": str(user.id), "user_email": user.email,
               "ticket": ticket, "minutes": minutes, "write_access": bool(write), "write_reason": row.write_reason}
    audit_events.record("impersonation.started", actor=staff, tenant_id=tenant.id, target=user.email, reason=reason,
                        details=details)
    if override_reason:
        # Its own event, so the tenant's log says plainly that its choice was overridden, and why.
        audit_events.record("impersonation.support_access_overridden", actor=staff, tenant_id=tenant.id,
                            target=user.email, reason=override_reason, details={"impersonation_id": str(row.id)})
    db.session.commit()
    return row, token


def enter(tenant, token):
    """Use the handoff `token` on `tenant`'s pages (once, within HANDOFF_SECONDS of the
    start, while the impersonation is open): the principal to sign in, impersonating.
    A token of another tenant, used, stale or unknown raises NotFound."""
    row = db.session.execute(
        select(Impersonation).where(Impersonation.handoff_hash == digest(token or ""),
                                    Impersonation.tenant_id == tenant.id).with_for_update()
    ).scalar_one_or_none()
    view = impersonation_view(row, db.session.get(StaffUser, row.staff_user_id)) if row is not None else None
    if view is None or row.started_at < _now() - timedelta(seconds=HANDOFF_SECONDS):
        raise NotFound("handoff", LINK_NOT_VALID, "Link not valid")
    with tenant_session(tenant) as data:
        user = tenant_row(data, TenantUser, row.user_id, tenant)
        if not user.is_active:
            raise NotFound("user", LINK_NOT_VALID, "Link not valid")
        principal = TenantPrincipal.of(user, data, impersonation=view)
    row.handoff_hash = None  # single use
    db.session.commit()
    return principal


def record_request(view, method, path, status, host):
    """One request made while impersonating: its audit event and the count, committed
    together. (Runs after the view: its service has committed its own changes, and a
    failed request's were rolled back.)"""
    db.session.execute(update(Impersonation).where(Impersonation.id == view.id)
                       .values(request_count=Impersonation.request_count + 1))
    audit_events.record("impersonation.request", actor=view.actor, tenant_id=view.tenant_id,
                        target=f"{view.user_email}: {method} {path} {status}"[:254],
                        details={"impersonation_id": str(view.id), "user_id": str(view.user_id),
                                 "user_email": view.user_email, "method": method, "path": path, "status": status,
                                 "host": host})
    db.session.commit()


def _close(row, cause):
    """End `row` (open) for `cause`, with its audit event; the caller commits."""
    now = _now()
    row.ended_at = min(now, row.expires_at)  # an expired one ended at its expiry, noticed later
    row.end_cause = cause
    row.handoff_hash = None
    staff = ("staff", str(row.staff_user_id), row.staff_email)
    audit_events.record("impersonation.ended", actor=staff if cause in ("ended", "signed_out") else SYSTEM,
                        tenant_id=row.tenant_id, target=row.user_email,
                        details={"impersonation_id": str(row.id), "cause": cause, "staff_email": row.staff_email,
                                 "user_id": str(row.user_id), "user_email": row.user_email,
                                 "request_count": row.request_count})


def _open_rows(*where, skip_locked=False):
    """Open impersonations matching `where`, locked, fresh from the database (the user
    loader may have loaded one earlier in this request)."""
    return db.session.execute(
        select(Impersonation).where(Impersonation.ended_at.is_(None), *where)
        .with_for_update(skip_locked=skip_locked).execution_options(populate_existing=True)
    ).scalars().all()


def _close_all(*where, cause, skip_locked=False):
    """Close every open impersonation matching `where` for `cause`, and commit. Returns how many."""
    rows = _open_rows(*where, skip_locked=skip_locked)
    for row in rows:
        _close(row, cause)
    db.session.commit()
    return len(rows)


def end(impersonation_id, cause="ended"):
    """End an impersonation (no-op when it has ended already). Returns whether it did."""
    return bool(_close_all(Impersonation.id == impersonation_id, cause=cause))


def close_lapsed(impersonation_id, tenant_id):
    """A tenant session still names an impersonation its user loader no longer accepts:
    close it if still open — `expired` past its time, else `revoked` (its user was
    disabled or removed, the tenant's sessions were ended, or its staff member may no
    longer impersonate)."""
    try:
        impersonation_id = uuid.UUID(str(impersonation_id))
    except ValueError:
        return
    for row in _open_rows(Impersonation.id == impersonation_id, Impersonation.tenant_id == tenant_id):
        _close(row, "expired" if row.expires_at <= _now() else "revoked")
    db.session.commit()


def end_all_for_staff(staff_id, cause="signed_out"):
    """End every open impersonation of a staff member (their console sign-out)."""
    return _close_all(Impersonation.staff_user_id == staff_id, cause=cause)


def expire():
    """Close every open impersonation past its time. Returns how many."""
    return _close_all(Impersonation.expires_at <= _now(), cause="expired", skip_locked=True)


def recent(limit=100):
    """(impersonation, tenant slug) pairs: open ones first, then the latest. (One past its
    time shows as expired before `flask support expire` or its next request closes it.)"""
    return db.session.execute(
        select(Impersonation, Tenant.slug).join(Tenant, Tenant.id == Impersonation.tenant_id)
        .order_by(Impersonation.ended_at.is_(None).desc(), Impersonation.started_at.desc()).limit(limit)
    ).all()
