"""Reading the outbox: every mail the portal sent or kept (portal/services/mail.py)."""

from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxMessage, Tenant
from portal.services import audit_events
from portal.services.pagination import paginate
from portal.services.rows import registry_row


def search_messages(recipient="", page=1, per_page=50):
    """A page of (message, tenant slug or None), newest first; `recipient` matches any
    part of the address, case-insensitively."""
    query = select(OutboxMessage, Tenant.slug).outerjoin(Tenant, Tenant.id == OutboxMessage.tenant_id)
    if recipient:
        query = query.where(OutboxMessage.to_address.icontains(recipient, autoescape=True))
    order = (OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    return paginate(query, order, page, per_page, scalars=False)


def read_message(message_id, staff):
    """(message, tenant slug or None). Reading one is audited, on the tenant's log too:
    its body may carry a set-password link."""
    message = registry_row(OutboxMessage, message_id)
    tenant = db.session.get(Tenant, message.tenant_id) if message.tenant_id else None
    audit_events.record("outbox.message_read", actor=staff, tenant_id=message.tenant_id, target=message.to_address,
                        details={"message_id": str(message.id), "subject": message.subject})
    db.session.commit()
    return message, tenant.slug if tenant else None
