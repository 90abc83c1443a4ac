"""Reading the outbox: every mail the portal sent or kept (portal/services/mail.py)."""
import uuid

from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxMessage, Tenant
from portal.services.pagination import paginate


def search_messages(recipient="", page=1, per_page=50):
    """A page of (message, tenant slug or None), newest first; `recipient` matches any
    part of the address, case-insensitively."""
    query = select(OutboxMessage, Tenant.slug).outerjoin(Tenant, Tenant.id == OutboxMessage.tenant_id)
    if recipient:
        query = query.where(OutboxMessage.to_address.icontains(recipient, autoescape=True))
    order = (OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    return paginate(query, order, page, per_page, scalars=False)


def get_message(message_id):
    """(message, tenant slug or None), or None for an unknown or malformed id."""
    try:
        key = uuid.UUID(str(message_id))
    except ValueError:
        return None
    return db.session.execute(
        select(OutboxMessage, Tenant.slug).outerjoin(Tenant, Tenant.id == OutboxMessage.tenant_id)
        .where(OutboxMessage.id == key)
    ).first()
