"""API tokens: opaque secrets, stored only as their SHA-256, revoked at once.

A token reads `tp_<tenant id hex>_<secret>`. The tenant id lets a request that names no
tenant be routed to its tenant (and one that names another tenant be refused) before
anything is looked up; the secret is checked against the hash in that tenant's own
table. Opaque tokens rather than JWTs: revocation has to be checked on the server on
every request anyway, and then a signed token adds a key to manage and nothing else.
"""
import hashlib
import re
import secrets
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from portal.extensions import db
from portal.services import audit
from portal.services.errors import Refused
from portal.tenancy.context import require_tenant
from portal.tenancy.data import ApiToken
from portal.tenancy.placement import get_row, tenant_session, tenant_transaction

SCOPES = {
    "users:read": "Read users",
    "orders:read": "Read orders",
    "orders:write": "Create, change and delete orders",
    "events:write": "Send analytics events",
}
# A token acts for its maker: making one needs the permissions its scopes stand for.
SCOPE_PERMISSIONS = {
    "users:read": {"users.view"},
    "orders:read": {"orders.view"},
    "orders:write": {"orders.create", "orders.update", "orders.delete"},
    "events:write": {"analytics.create"},
}
TOKEN_RE = re.compile(r"^tp_([0-9a-f]{32})_([A-Za-z0-9_-]{20,})$")  # as tenancy/resolve.py reads it


def _hash(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def create(name, scopes, days, actor):
    """Make a token for the current tenant; return (token row, the token, shown once)."""
    tenant = require_tenant()
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise Refused("Give the token a name of at most 80 characters.", "name")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise Refused(f"No such scope: {', '.join(unknown)}.", "scopes")
    if not scopes:
        raise Refused("Choose at least one scope.", "scopes")
    lacking = sorted(scope for scope in scopes if not SCOPE_PERMISSIONS[scope] <= set(actor.permissions))
    if lacking:
        raise Refused(f"Your role cannot grant {', '.join(lacking)}: a token may do only what you may.", "scopes")
    if days is not None and not 1 <= days <= 365:
        raise Refused("A token lasts 1 to 365 days (blank: until revoked).", "days")
    secret = secrets.token_urlsafe(32)
    with tenant_transaction() as session:
        row = ApiToken(tenant_id=tenant.id, name=name, scopes=sorted(scopes), secret_hash=_hash(secret),
                       hint=secret[:6], created_by=audit.actor_label(actor),
                       expires_at=datetime.now(timezone.utc) + timedelta(days=days) if days else None)
        session.add(row)
    audit.record("api_token.created", actor=actor, tenant_id=tenant.id, target=name, details={"scopes": row.scopes})
    db.session.commit()
    return row, f"tp_{tenant.id.hex}_{secret}"


def listing():
    with tenant_session() as session:
        return session.execute(select(ApiToken).order_by(ApiToken.created_at.desc())).scalars().all()


def revoke(token_id, actor):
    tenant = require_tenant()
    with tenant_transaction() as session:
        row = get_row(session, ApiToken, token_id)
        if row is None:
            raise LookupError(token_id)
        if row.revoked_at is None:
            row.revoked_at = datetime.now(timezone.utc)
        name = row.name
    audit.record("api_token.revoked", actor=actor, tenant_id=tenant.id, target=name)
    db.session.commit()


def authenticate(token):
    """The current tenant's live token row for `token`, or None (wrong tenant, unknown,
    revoked or expired: all the same to the caller)."""
    tenant = require_tenant()
    match = TOKEN_RE.match(token or "")
    if match is None or uuid.UUID(match.group(1)) != tenant.id:
        return None
    with tenant_session() as session:
        row = session.execute(select(ApiToken).where(ApiToken.secret_hash == _hash(match.group(2)))).scalar_one_or_none()
    now = datetime.now(timezone.utc)
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return row
