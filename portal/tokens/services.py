"""API tokens: opaque secrets, stored only as their SHA-256, revoked at once.

A token reads `tp_<tenant id hex>_<secret>`. The tenant id lets a request that names no
tenant be routed to its tenant (and one that names another tenant be refused) before
anything is looked up; the secret is checked against the hash in that tenant's own
table. Opaque tokens rather than JWTs: revocation has to be checked on the server on
every request anyway, and then a signed token adds a key to manage and nothing else.

A token acts for its maker (`created_by_id`, a tenant user), and on every request it
may do only what its maker may *now*: the maker is looked up in the same query as the
token, a disabled or removed maker refuses the token, and a scope whose permissions the
maker's role no longer holds is not effective (the role may be changed back). A token
with no maker on record (one whose maker migration t0004 could not find) is refused.
"""
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, select

from portal.analytics.events import acting_user_key, track_event
from portal.auth.tenant_roles import permissions_of
from portal.extensions import db
from portal.services import audit_events
from portal.services.errors import Refused
from portal.services.rows import tenant_row
from portal.services.secret_tokens import digest, new_secret
from portal.services.validation import check_text
from portal.tenancy.context import require_tenant
from portal.tenancy.data import ApiToken, TenantUser
from portal.tenancy.placement import tenant_session, tenant_transaction
from portal.tenancy.resolve import API_TOKEN

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
MAKER_INACTIVE = "This token's maker is no longer an active user of the tenant."


@dataclass(frozen=True)
class Grant:
    """A live token as a request may use it: `scopes` are the effective ones, those of
    the token's scopes that its maker's role still allows (all of them for a token with
    no maker on record)."""

    token: ApiToken
    scopes: tuple


@dataclass(frozen=True)
class TokenState:
    """A token as the tokens page shows it: whether its maker is gone, which scopes lapsed."""

    token: ApiToken
    maker_inactive: bool = False
    lapsed: tuple = ()


def allowed_scopes(scopes, permissions):
    """The scopes of `scopes` whose permissions are all in `permissions` (an unknown
    scope: none)."""
    return tuple(scope for scope in scopes if scope in SCOPE_PERMISSIONS and SCOPE_PERMISSIONS[scope] <= permissions)


def _with_maker():
    """Tokens with their maker's active flag and role (both None: no such user)."""
    return select(ApiToken, TenantUser.is_active, TenantUser.role).outerjoin(
        TenantUser, and_(TenantUser.tenant_id == ApiToken.tenant_id, TenantUser.id == ApiToken.created_by_id))


DAYS = (1, 365)  # how long a token may last; blank: until revoked


def create(name, scopes, days, actor):
    """Make a token for the current tenant; return (token row, the token, shown once)."""
    tenant = require_tenant()
    name = check_text(name, "name", "a token's name", 80, missing="Give the token a name of at most 80 characters.")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise Refused(f"No such scope: {', '.join(unknown)}.", "scopes")
    if not scopes:
        raise Refused("Choose at least one scope.", "scopes")
    lacking = sorted(scope for scope in scopes if not SCOPE_PERMISSIONS[scope] <= set(actor.permissions))
    if lacking:
        raise Refused(f"Your role cannot grant {', '.join(lacking)}: a token may do only what you may.", "scopes")
    if days is not None and not DAYS[0] <= days <= DAYS[1]:
        raise Refused("A token lasts 1 to 365 days (blank: until revoked).", "days")
    secret = new_secret()
    with tenant_transaction() as session:
        row = ApiToken(tenant_id=tenant.id, name=name, scopes=sorted(scopes), secret_hash=digest(secret),
                       hint=secret[:6], created_by=audit_events.actor_label(actor), created_by_id=actor.id,
                       expires_at=datetime.now(timezone.utc) + timedelta(days=days) if days else None)
        session.add(row)
    audit_events.record("api_token.created", actor=actor, tenant_id=tenant.id, target=name,
                        details={"scopes": row.scopes})
    db.session.commit()
    track_event("token_created", acting_user_key(), {"scopes": ",".join(row.scopes)})
    return row, f"tp_{tenant.id.hex}_{secret}"


def listing_with_state():
    """The current tenant's tokens, newest first, each as a TokenState: what the API
    would let it do now (one query, plus one per custom role of a maker)."""
    states = []
    with tenant_session() as session:
        permissions = {}
        for row, active, role in session.execute(_with_maker().order_by(ApiToken.created_at.desc())).all():
            if not active:
                states.append(TokenState(row, maker_inactive=True))
            else:
                if role not in permissions:
                    permissions[role] = permissions_of(session, role)
                allowed = allowed_scopes(row.scopes, permissions[role])
                states.append(TokenState(row, lapsed=tuple(s for s in row.scopes if s not in allowed)))
    return states


def revoke(token_id, actor):
    tenant = require_tenant()
    with tenant_transaction() as session:
        row = tenant_row(session, ApiToken, token_id)
        if row.revoked_at is None:
            row.revoked_at = datetime.now(timezone.utc)
        name = row.name
    audit_events.record("api_token.revoked", actor=actor, tenant_id=tenant.id, target=name)
    db.session.commit()


def authenticate(token):
    """The current tenant's live token for `token` as a Grant, or None (wrong tenant,
    unknown, revoked or expired: all the same to the caller). Refused (MAKER_INACTIVE)
    when the token's maker is disabled or no longer a user of the tenant.

    The maker comes in the same query as the token (an outer join on its primary key);
    a maker with a custom role costs one more query, in the same transaction, for the
    role's permissions."""
    tenant = require_tenant()
    match = API_TOKEN.match(token or "")
    if match is None or uuid.UUID(match.group(1)) != tenant.id:
        return None
    with tenant_session() as session:
        found = session.execute(_with_maker().where(
            ApiToken.tenant_id == tenant.id, ApiToken.secret_hash == digest(match.group(2)))).one_or_none()
        if found is None:
            return None
        row, active, role = found
        now = datetime.now(timezone.utc)
        if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            return None
        if not active:  # None: the maker was removed (or was never found); False: disabled
            raise Refused(MAKER_INACTIVE)
        return Grant(row, allowed_scopes(row.scopes, permissions_of(session, role)))
