from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Tenant
from portal.services.pagination import paginate
from portal.tenancy.context import require_tenant


def search_events(tenant_slug="", actor="", action="", page=1, per_page=50):
    """A page of audit events, newest first. Unknown tenant slug: no events."""
    query = select(AuditEvent, Tenant.slug).outerjoin(Tenant, Tenant.id == AuditEvent.tenant_id)
    if tenant_slug:
        query = query.where(Tenant.slug == tenant_slug)
    if actor:
        query = query.where(AuditEvent.actor_label == actor.lower())  # labels are stored lower case
    if action:
        query = query.where(AuditEvent.action == action)
    order = (AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    return paginate(query, order, page, per_page, scalars=False)


def recent_for_tenant(tenant_id, limit=10):
    return db.session.execute(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)
    ).scalars().all()


def known_actions():
    return db.session.execute(select(AuditEvent.action).distinct().order_by(AuditEvent.action)).scalars().all()


def own_events(action="", page=1, per_page=50):
    """The current tenant's own audit events (staff actions on it included), newest first."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == require_tenant().id)
    if action:
        query = query.where(AuditEvent.action == action)
    return paginate(query, (AuditEvent.occurred_at.desc(), AuditEvent.id.desc()), page, per_page)
