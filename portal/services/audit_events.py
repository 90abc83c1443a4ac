"""Audit events: written in the same transaction as the change they describe."""
from flask import has_request_context, request
from flask_login import current_user

from portal.extensions import db
from portal.models import AuditEvent


def actor_of(user):
    """(kind, id, label) of whoever acts: a staff user, a tenant user, or the system."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "system", None, "system"
    if getattr(user, "is_staff", False):
        return "staff", str(user.id), user.email
    impersonation = getattr(user, "impersonation", None)
    if impersonation is not None:
        # A change made while impersonating is the staff member's, done as the user.
        return "staff", str(impersonation.staff_id), f"{impersonation.staff_email} as {user.email}"
    return "tenant_user", str(user.id), user.email


def actor_label(actor):
    """The label of `actor` (a user, or a (kind, id, label) tuple) for job records."""
    return actor[2] if isinstance(actor, tuple) else actor_of(actor)[2]


def record(action, *, tenant_id=None, target=None, reason=None, details=None, actor=None):
    """Add an audit event to the current transaction; the caller commits."""
    if actor is None and has_request_context():
        actor = current_user._get_current_object()
    kind, actor_id, label = actor if isinstance(actor, tuple) else actor_of(actor)
    event = AuditEvent(
        actor_kind=kind,
        actor_id=actor_id,
        actor_label=label,
        tenant_id=tenant_id,
        action=action,
        target=target,
        reason=reason,
        details=details or {},
        ip=request.remote_addr if has_request_context() else None,
    )
    db.session.add(event)
    return event
