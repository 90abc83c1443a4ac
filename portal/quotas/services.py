"""Across tenants: quota pressure and top consumers, for staff."""
from datetime import datetime, timezone

import redis
from sqlalchemy import select

from portal.extensions import db, redis_holder
from portal.models import WITH_STORAGE, Tenant
from portal.services import entitlements, ratelimit
from portal.services.keys import tenant_key
from portal.services.metering import storage_bytes, user_count
from portal.tenancy.context import TenantRef


def _served(limit=500):
    return db.session.execute(
        select(Tenant).where(Tenant.status.in_(WITH_STORAGE)).order_by(Tenant.slug).limit(limit)).scalars().all()


def _percent(used, limit):
    return None if not limit or used is None else round(100 * used / limit, 1)


def pressure():
    """Each served tenant's use of its limits, highest pressure (percent of a limit) first."""
    minute, _ = ratelimit.minute_window()
    day, _ = ratelimit.day_window()
    rows = []
    for tenant in _served():
        ref = TenantRef.of(tenant)
        granted = entitlements.for_tenant(tenant.id, tenant.plan_code)
        measures = {
            "users": (user_count(ref), granted.limit("max_users")),
            "storage_mb": (round(storage_bytes(ref) / 1_048_576, 2), granted.limit("storage_mb")),
            "api_today": (ratelimit.read(tenant.id, "api", day), granted.limit("api_calls_per_day")),
            "rpm": (ratelimit.read(tenant.id, "rpm", minute), granted.limit("requests_per_minute")),
        }
        percents = {k: _percent(used, limit) for k, (used, limit) in measures.items()}
        top = max((p for p in percents.values() if p is not None), default=0)
        rows.append({"tenant": tenant, "measures": measures, "percents": percents, "pressure": top})
    return sorted(rows, key=lambda r: (-r["pressure"], r["tenant"].slug))


def top_consumers(n=10):
    """The heaviest tenants by requests this minute, API calls today, storage, and slow
    statements today (each at least PORTAL_SLOW_STATEMENT_MS), with its slowest one."""
    minute, _ = ratelimit.minute_window()
    day, _ = ratelimit.day_window()
    measured = []
    for tenant in _served():
        ref = TenantRef.of(tenant)
        measured.append((tenant, ratelimit.read(tenant.id, "rpm", minute) or 0,
                         ratelimit.read(tenant.id, "api", day) or 0, storage_bytes(ref),
                         ratelimit.read(tenant.id, "slow", day) or 0, _slowest(tenant.id, day)))
    return {
        "by_requests": sorted(measured, key=lambda m: -m[1])[:n],
        "by_api": sorted(measured, key=lambda m: -m[2])[:n],
        "by_storage": sorted(measured, key=lambda m: -m[3])[:n],
        "by_slow": [m for m in sorted(measured, key=lambda m: -m[4]) if m[4]][:n],
        "at": datetime.now(timezone.utc),
    }


def _slowest(tenant_id, day):
    """(statement, ms) of the tenant's slowest statement today, or None."""
    try:
        found = redis_holder.client.zrevrange(tenant_key(tenant_id, "slowest", day), 0, 0, withscores=True)
    except redis.RedisError:
        return None
    return (found[0][0], round(found[0][1])) if found else None
