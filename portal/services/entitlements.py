"""What a tenant is entitled to: its plan, with its overrides applied.

Every value says where it comes from (the plan, or an override with its reason and end).
An override past its end no longer applies: the check is made on each read. Reads are
cached per app for a few seconds (ENTITLEMENTS_CACHE_SECONDS); changes made here
clear this process's cache at once.
"""
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from flask import current_app, g
from sqlalchemy import or_, select

from portal.extensions import db
from portal.models import Plan, TenantOverride, bounded_limit
from portal.services.errors import Refused
from portal.tenancy.context import require_tenant

LIMITS = {
    "max_users": "Users",
    "storage_mb": "Storage (MB)",
    "api_calls_per_day": "API calls a day",
    "requests_per_minute": "Requests a minute",
    "db_connections": "Database connections",
    "statement_timeout_ms": "Statement timeout (ms)",
    "event_retention_days": "Event retention (days)",
}
FEATURES = {
    "api_access": "API access",
    "analytics": "Analytics",
    "advanced_reports": "Advanced reports (funnels, breakdowns, CSV)",
    "custom_domains": "Custom domains",
    "audit_export": "Audit log export",
}


@dataclass
class Entry:
    name: str
    value: object
    plan_value: object
    source: str = "plan"  # plan | override
    expires_at: Optional[datetime] = None
    reason: Optional[str] = None


@dataclass
class Entitlements:
    plan_code: str
    plan_name: str
    limits: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)

    def limit(self, name):
        """The limit's value; None means unlimited."""
        return self.limits[name].value

    def has(self, feature):
        entry = self.features.get(feature)
        return bool(entry and entry.value)


class EntitlementsCache:
    """One app's cache of entitlements (app.extensions["portal.entitlements"]): each
    entry lives ENTITLEMENTS_CACHE_SECONDS, never past the end of an override in it.
    `listeners` are called with the tenant id (None: every tenant) when this process
    learns of a change."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.listeners = []
        self._entries = {}
        self._lock = threading.Lock()

    def get(self, key):
        hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def put(self, key, result):
        ttl = self.seconds
        ends = [e.expires_at for e in list(result.limits.values()) + list(result.features.values()) if e.expires_at]
        if ends:
            ttl = max(0.0, min(ttl, (min(ends) - _now()).total_seconds()))
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl, result)

    def forget(self, tenant_id=None):
        with self._lock:
            for key in [k for k in self._entries if tenant_id is None or k[0] == str(tenant_id)]:
                self._entries.pop(key, None)
        for listener in self.listeners:
            listener(tenant_id)


def install(app):
    app.extensions["portal.entitlements"] = EntitlementsCache(app.config["ENTITLEMENTS_CACHE_SECONDS"])


def _cache():
    return current_app.extensions["portal.entitlements"]


def _now():
    return datetime.now(timezone.utc)


def for_tenant(tenant_id, plan_code):
    """The entitlements of the tenant on `plan_code`, overrides applied."""
    key = (str(tenant_id), plan_code)
    result = _cache().get(key)
    if result is None:
        result = _compute(tenant_id, plan_code)
        _cache().put(key, result)
    return result


def current():
    """The entitlements of the request's tenant, read once per request (the limits step
    of the pipeline reads them first)."""
    if "entitlements" not in g:
        tenant = require_tenant()
        g.entitlements = for_tenant(tenant.id, tenant.plan_code)
    return g.entitlements


def forget(tenant_id=None):
    """This process's cached entitlements of a tenant (None: of every tenant) are stale."""
    _cache().forget(tenant_id)


def _compute(tenant_id, plan_code):
    plan = db.session.get(Plan, plan_code)
    result = Entitlements(plan.code, plan.name)
    for name in LIMITS:
        value = bounded_limit(name, getattr(plan, name))
        result.limits[name] = Entry(name, value, value)
    for name in set(FEATURES) | set(plan.features):
        value = bool(plan.features.get(name))
        result.features[name] = Entry(name, value, value)
    overrides = db.session.execute(
        select(TenantOverride).where(
            TenantOverride.tenant_id == tenant_id,
            or_(TenantOverride.expires_at.is_(None), TenantOverride.expires_at > _now()),
        )
    ).scalars()
    for override in overrides:
        target = result.limits if override.kind == "limit" else result.features
        if override.name in target:
            entry = target[override.name]
            entry.value = bounded_limit(override.name, override.value, entry.plan_value) \
                if override.kind == "limit" else bool(override.value)
            entry.source, entry.expires_at, entry.reason = "override", override.expires_at, override.reason
    return result


def offered_plan(plan_code, field="plan"):
    """The plan `plan_code` if it is on offer (not retired); Refused otherwise: the one
    check of a plan chosen for a new tenant, a change, or a tenant's request."""
    plan = db.session.get(Plan, plan_code or "") if isinstance(plan_code, str) and len(plan_code) <= 32 else None
    if plan is None or plan.is_retired:
        raise Refused("Choose one of the plans offered.", field)
    return plan


def plans_with(feature):
    """Names of the plans on offer that have `feature` (for the explanation page)."""
    return [p.name for p in db.session.execute(select(Plan).where(Plan.is_retired.is_(False))
                                               .order_by(Plan.position)).scalars() if p.features.get(feature)]
