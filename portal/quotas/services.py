"""Across tenants: quota pressure and top consumers, for staff."""
from datetime import datetime, timezone

from sqlalchemy import select

from portal.extensions import db
from portal.models import Tenant
from portal.services import entitlements, ratelimit
from portal.services.metering import storage_bytes, user_count
from portal.tenancy.context import TenantRef

SERVED = ("active", "suspended")


def _served(limit=500):
    return db.session.execute(
        select(Tenant).where(Tenant.status.in_(SERVED)).order_by(Tenant.slug).limit(limit)).scalars().all()


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
    """The heaviest tenants by requests this minute, API calls today and storage.
    (Slow queries per tenant are not measured yet.)"""
    minute, _ = ratelimit.minute_window()
    day, _ = ratelimit.day_window()
    measured = []
    for tenant in _served():
        ref = TenantRef.of(tenant)
        measured.append((tenant, ratelimit.read(tenant.id, "rpm", minute) or 0,
                         ratelimit.read(tenant.id, "api", day) or 0, storage_bytes(ref)))
    return {
        "by_requests": sorted(measured, key=lambda m: -m[1])[:n],
        "by_api": sorted(measured, key=lambda m: -m[2])[:n],
        "by_storage": sorted(measured, key=lambda m: -m[3])[:n],
        "at": datetime.now(timezone.utc),
    }
