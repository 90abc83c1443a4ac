"""The one lookup of a row by an id that came from outside (a URL, a form, a token).

A malformed id, an unknown one and another tenant's are all the same NotFound, which the
error handler answers with 404: in the registry (`registry_row`, with `tenant_id` to
check a row's owner) and in the current tenant's own tables (`tenant_row`, which keys by
the tenant and reads under its row-level security).
"""
import uuid

from portal.extensions import db
from portal.services.errors import NotFound
from portal.tenancy.context import require_tenant


def _uuid(raw_id):
    try:
        return uuid.UUID(str(raw_id))
    except ValueError:
        raise NotFound(raw_id) from None


def registry_row(model, raw_id, tenant_id=None):
    row = db.session.get(model, _uuid(raw_id))
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        raise NotFound(raw_id)
    return row


def tenant_row(session, model, raw_id, tenant=None):
    """The row `raw_id` of `model` of `tenant` (default: the current one), read through
    `session`, a session on that tenant."""
    tenant = tenant or require_tenant()
    row = session.get(model, (tenant.id, _uuid(raw_id)))
    if row is None:
        raise NotFound(raw_id)
    return row
