"""The one lookup of a registry row by an id that came from outside (a URL, a form).

Its twin for tenant tables is portal.tenancy.placement.get_row. A malformed id, an
unknown one and — when `tenant_id` is given — another tenant's row are all the same
None, which views answer with 404.
"""
import uuid

from portal.extensions import db


def registry_row(model, raw_id, tenant_id=None):
    try:
        key = uuid.UUID(str(raw_id))
    except ValueError:
        return None
    row = db.session.get(model, key)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        return None
    return row
