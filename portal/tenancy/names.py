"""Names of a tenant's database objects, derived from its id only (never from user
text), and the password of its database role.

`PORTAL_NAME_PREFIX` (default `tenant_`) starts role and silo database names, so that one
PostgreSQL cluster can hold several portals (or test runs) side by side.
"""
import hashlib
import hmac
import uuid

from flask import current_app


def _hex(tenant_id):
    return uuid.UUID(str(tenant_id)).hex


def schema_name(tenant_id):
    """The bridge tier's schema of the tenant."""
    return f"t_{_hex(tenant_id)}"


def role_name(tenant_id):
    """The tenant's own login role (bridge and silo tiers)."""
    return f"{current_app.config['PORTAL_NAME_PREFIX']}{_hex(tenant_id)}"


def database_name(tenant_id):
    """The silo tier's database of the tenant."""
    return f"{current_app.config['PORTAL_NAME_PREFIX']}{_hex(tenant_id)}"


def role_password(tenant_id):
    """Derived, not stored: HMAC of the tenant id under PORTAL_TENANT_ROLE_SECRET."""
    secret = current_app.config["PORTAL_TENANT_ROLE_SECRET"].encode()
    return hmac.new(secret, _hex(tenant_id).encode(), hashlib.sha256).hexdigest()
