"""Small helpers shared by the views of the staff console."""
import uuid

from flask import abort

from portal.extensions import db


def get_or_404(model, raw_id):
    """The registry row `raw_id` of `model`; a malformed or unknown id is 404.
    (Tenant rows use portal.tenancy.placement.get_row, which also checks the tenant.)"""
    try:
        row = db.session.get(model, uuid.UUID(str(raw_id)))
    except ValueError:
        row = None
    if row is None:
        abort(404)
    return row
