"""The current tenant: a ContextVar bound per request, job, CLI command or test."""
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from typing import Optional

from portal.models import bounded_limit


@dataclass(frozen=True)
class TenantRef:
    """What a request needs to know of its tenant; cheap to cache and to compare."""

    id: uuid.UUID
    slug: str
    name: str
    status: str
    tier: str
    plan_code: str
    status_reason: Optional[str] = None
    # Silo tenants: the environment variable naming their server's URL ("" = registry's).
    placement_env: Optional[str] = None
    # Sessions made in an earlier epoch are over (suspension, deprovisioning).
    session_epoch: int = 0
    # Which placement this ref describes: a move's switch bumps it (every process reloads).
    placement_version: int = 0
    # Set while staff hold the tenant in maintenance mode (writes refused, a banner).
    maintenance_reason: Optional[str] = None
    # Noisy-neighbour caps of its plan (with overrides): per transaction, per silo engine.
    statement_timeout_ms: Optional[int] = None
    db_connections: Optional[int] = None
    # The tenant's registry version published in Redis when this ref was read (None: none
    # yet): a request that finds another reloads it (portal/tenancy/lookup.py).
    registry_version: Optional[int] = None

    @classmethod
    def of(cls, tenant):
        return cls(
            id=tenant.id,
            slug=tenant.slug,
            name=tenant.name,
            status=tenant.status,
            tier=tenant.tier,
            plan_code=tenant.plan_code,
            status_reason=tenant.status_reason,
            placement_env=(tenant.placement.url_env or "") if tenant.placement is not None else None,
            session_epoch=tenant.session_epoch or 0,
            placement_version=tenant.placement_version or 0,
            maintenance_reason=tenant.maintenance_reason,
            **_caps(tenant),
        )

    def to_dict(self):
        data = asdict(self)
        data["id"] = str(self.id)
        return data

    @classmethod
    def from_dict(cls, data):
        """A ref as to_dict wrote it, by this code or another version of it (a rolling
        deploy shares the Redis cache): fields it does not know are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "id": uuid.UUID(data["id"])})

    def placed(self, tier, placement_env):
        """This tenant as it would be in another tier or on another placement (a move's
        target): the same id, so the same names of schema, role and database."""
        return replace(self, tier=tier, placement_env=placement_env)


# The plan limits a TenantRef carries (the tenant's sessions apply them): a change of
# them in the plan matrix forgets the plan's tenants (lookup.forget_plan_tenants).
TENANT_REF_CAPS = ("statement_timeout_ms", "db_connections")


def _caps(tenant):
    """The plan's statement timeout and connection cap, with the tenant's live overrides
    of them (a cached TenantRef may keep an expired override up to the cache's life)."""
    caps = {name: getattr(tenant.plan, name) for name in TENANT_REF_CAPS}
    now = datetime.now(timezone.utc)
    for override in tenant.overrides:
        if override.kind == "limit" and override.name in caps and override.in_force(now):
            caps[override.name] = override.value
    return {name: bounded_limit(name, value, getattr(tenant.plan, name)) for name, value in caps.items()}


class NoTenantBound(RuntimeError):
    """Tenant data was asked for where no tenant is bound."""


current_tenant: ContextVar[Optional[TenantRef]] = ContextVar("current_tenant", default=None)


def get_current_tenant():
    return current_tenant.get()


def require_tenant():
    tenant = current_tenant.get()
    if tenant is None:
        raise NoTenantBound("no tenant is bound: use tenant_context(tenant) or a tenant route")
    return tenant


@contextmanager
def tenant_context(tenant):
    """Bind `tenant` (a Tenant or TenantRef) for the block; the previous one comes back after."""
    ref = tenant if isinstance(tenant, TenantRef) or tenant is None else TenantRef.of(tenant)
    token = current_tenant.set(ref)
    try:
        yield ref
    finally:
        current_tenant.reset(token)
