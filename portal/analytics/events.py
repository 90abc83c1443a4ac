"""Recording analytics events: one service for the API's batches and the portal's own
activity, and the rules an event must meet (each refusal names the field).

A batch is stored in one transaction and one statement: the events, the users new to
the tenant (numbered in the order first seen), and the day's roll-ups (events and a
bitmap of users per day, name and block of users), so dashboards never count raw events
for a whole range (portal/analytics/queries.py). In the same transaction it deletes what
dashboards kept that it changes (runs of days, days' active users). Then, outside the
tenant's transaction, the registry's count of the tenant's events per day (the staff
overview) and the tenant's cache version (its cached dashboards are stale from that moment).
"""
import json
import logging
import math
from collections import Counter
from datetime import datetime, time, timedelta, timezone

from flask import has_request_context
from flask_login import current_user
from sqlalchemy import text

from portal.analytics.queries import forget_kept, lock_analytics
from portal.extensions import db
from portal.models import WITH_STORAGE
from portal.services import cache, entitlements
from portal.services.errors import Refused
from portal.tenancy.context import require_tenant
from portal.tenancy.data import ALL_EVENTS, ROLLUP_CHUNK_BITS
from portal.tenancy.placement import qualified_table, tenant_transaction

log = logging.getLogger(__name__)

MAX_EVENTS = 1000
MAX_NAME = 80
MAX_USER_KEY = 120
MAX_PROPERTIES = 50
MAX_PROPERTY_KEY = 64
MAX_PROPERTY_TEXT = 500
MAX_PROPERTIES_BYTES = 8192
# The portal's own events (sign-ins, orders, …) are named portal.*: the API cannot send those.
PORTAL_PREFIX = "portal."
# An event may be stamped at most EVENT_FUTURE ahead (clocks drift) and no further back than
# the plan's retention, with a UTC offset of at most 14 hours (the widest any place uses).
EVENT_FUTURE = timedelta(days=1)
MAX_OFFSET = timedelta(hours=14)

# One statement stores a batch. `batch` is the events as arrays; the users CTE numbers the
# users new to the tenant after its highest number (the caller holds the tenant's
# analytics lock, so no other batch numbers at the same time); the roll-ups are added to
# (count) and OR-ed into (users), a late event landing on its own day like any other: one
# row per day, name and block of users, and one per day and block for every name at once
# (ALL_EVENTS), which the totals and the active users read.
_STORE = f"""
WITH batch AS (
  SELECT b.name, b.user_key, CAST(b.properties AS jsonb) AS properties, b.occurred_at,
         CAST(b.occurred_at AT TIME ZONE 'UTC' AS date) AS day
  FROM unnest(CAST(:names AS text[]), CAST(:user_keys AS text[]), CAST(:properties AS text[]),
              CAST(:occurred_at AS timestamptz[])) AS b(name, user_key, properties, occurred_at)
), keys AS (
  SELECT DISTINCT user_key FROM batch WHERE user_key IS NOT NULL
), known AS (
  SELECT u.user_key, u.idx FROM {{users}} u JOIN keys USING (user_key)
), added AS (
  INSERT INTO {{users}} (tenant_id, user_key, idx)
  SELECT CAST(:tenant_id AS uuid), k.user_key,
         (SELECT coalesce(max(idx) + 1, 0) FROM {{users}}) + row_number() OVER (ORDER BY k.user_key) - 1
  FROM keys k WHERE NOT EXISTS (SELECT 1 FROM known WHERE known.user_key = k.user_key)
  RETURNING user_key, idx
), numbered AS (
  SELECT user_key, idx FROM known UNION ALL SELECT user_key, idx FROM added
), stored AS (
  INSERT INTO {{events}} (tenant_id, id, name, user_key, properties, occurred_at)
  SELECT CAST(:tenant_id AS uuid), gen_random_uuid(), name, user_key, properties, occurred_at FROM batch
)
INSERT INTO {{rollups}} AS r (tenant_id, key, day, name, chunk, events, users)
SELECT CAST(:tenant_id AS uuid), g.day || '|' || g.chunk || '|' || g.name, g.day, g.name, g.chunk, g.events, g.users
FROM (
  SELECT x.day, CASE WHEN grouping(x.name) = 1 THEN '{ALL_EVENTS}' ELSE x.name END AS name, x.chunk, count(*) AS events,
         bit_or(CASE WHEN x.idx IS NULL THEN z.zero ELSE set_bit(z.zero, x.idx % {ROLLUP_CHUNK_BITS}, 1) END) AS users
  FROM (SELECT b.day, b.name, coalesce(n.idx / {ROLLUP_CHUNK_BITS}, 0) AS chunk, n.idx
        FROM batch b LEFT JOIN numbered n USING (user_key)) x
  CROSS JOIN (SELECT CAST(repeat('0', {ROLLUP_CHUNK_BITS}) AS bit({ROLLUP_CHUNK_BITS})) AS zero) z
  GROUP BY GROUPING SETS ((x.day, x.name, x.chunk), (x.day, x.chunk))
) g
ORDER BY 2
ON CONFLICT (tenant_id, key) DO UPDATE SET events = r.events + excluded.events, users = r.users | excluded.users
"""


def ingest_batch(data):
    """The API's batch: {"events": [{"name", "user_id"?, "properties"?, "occurred_at"?}]}.
    All or nothing: one bad event refuses the batch, naming it. Returns how many."""
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
        raise Refused(f"events: a list of 1 to {MAX_EVENTS} events.", "events")
    window = accepted_window()
    rows = [_checked(f"events[{n}]", item, window) for n, item in enumerate(events)]
    store(rows)
    return len(rows)


def track_event(name, user_key=None, properties=None, tenant=None):
    """Record one of the portal's own events (`portal.<name>`) for the tenant (default:
    the current one), after the action it records has committed. Never fails that
    action: a problem is logged."""
    tenant = tenant or require_tenant()
    if tenant.status not in WITH_STORAGE:
        return
    row = {"name": PORTAL_PREFIX + name, "user_key": None if user_key is None else str(user_key),
           "properties": properties or {}, "occurred_at": datetime.now(timezone.utc)}
    try:
        store([row], tenant)
    except Exception:  # noqa: BLE001 - a sign-in or an order must not fail for its event
        log.exception("event %s of tenant %s not recorded", row["name"], tenant.id)


def acting_user_key():
    """The tenant user acting in this request (a token acts for its maker), or None."""
    if not has_request_context() or not current_user or not current_user.is_authenticated:
        return None
    return None if getattr(current_user, "is_staff", False) else getattr(current_user, "id", None)


def store(rows, tenant=None):
    """Store checked rows (dicts of name, user_key, properties, occurred_at) in one
    transaction, then count them for the staff overview and make the tenant's cached
    results stale."""
    tenant = tenant or require_tenant()
    if not rows:
        return
    days = Counter(r["occurred_at"].astimezone(timezone.utc).date() for r in rows)
    with tenant_transaction(tenant) as session:
        lock_analytics(session, tenant.id)
        session.execute(text(_STORE.format(users=qualified_table(session, "event_users"),
                                           events=qualified_table(session, "events"),
                                           rollups=qualified_table(session, "event_rollups"))), {
            "tenant_id": str(tenant.id),
            "names": [r["name"] for r in rows],
            "user_keys": [r["user_key"] for r in rows],
            "properties": [json.dumps(r["properties"]) for r in rows],
            "occurred_at": [r["occurred_at"] for r in rows],
        })
        forget_kept(session, min(days), max(days))
    _count_days(tenant.id, days)
    cache.touch(tenant.id)


# The registry's count of a batch: per tenant and day, and per day (a tenant's first event
# of a day — the row inserted, not updated — counts the tenant as active that day).
_COUNT_DAYS = text("""
WITH batch AS (
  SELECT * FROM unnest(CAST(:days AS date[]), CAST(:events AS bigint[])) AS b(day, events)
), counted AS (
  INSERT INTO registry.tenant_activity_days AS a (tenant_id, day, events)
  SELECT CAST(:tenant_id AS uuid), day, events FROM batch
  ON CONFLICT (tenant_id, day) DO UPDATE SET events = a.events + excluded.events
  RETURNING day, (xmax = 0) AS first
)
INSERT INTO registry.activity_days AS t (day, tenants, events)
SELECT b.day, CASE WHEN c.first THEN 1 ELSE 0 END, b.events FROM batch b JOIN counted c USING (day)
ORDER BY b.day
ON CONFLICT (day) DO UPDATE SET tenants = t.tenants + excluded.tenants, events = t.events + excluded.events
""")


def _count_days(tenant_id, days):
    """Add a batch's events per day (a Counter) to the registry's events per tenant and
    day, and per day. After the tenant's commit: a failure here leaves the overview short,
    never the tenant's own numbers."""
    try:
        db.session.execute(_COUNT_DAYS, {"tenant_id": str(tenant_id), "days": sorted(days),
                                         "events": [days[d] for d in sorted(days)]})
        db.session.commit()
    except Exception:  # noqa: BLE001 - the events are stored; only the overview's count is short
        db.session.rollback()
        log.exception("events of tenant %s not counted in the overview", tenant_id)


def retention_days(tenant=None):
    """How many days the tenant's plan keeps events (overrides applied)."""
    tenant = tenant or require_tenant()
    return entitlements.for_tenant(tenant.id, tenant.plan_code).limit("event_retention_days") or 3650


def accepted_window(tenant=None):
    """(earliest, latest) occurrence times accepted now: from the first UTC day the plan's
    retention keeps (the dashboards' earliest day, the first the expiry spares) to a day ahead."""
    now = datetime.now(timezone.utc)
    first_day = now.date() - timedelta(days=retention_days(tenant) - 1)
    return datetime.combine(first_day, time(), timezone.utc), now + EVENT_FUTURE


# -- the rules ----------------------------------------------------------------------------
def _checked(at, item, window):
    if not isinstance(item, dict):
        raise Refused(f"{at}: an object.", at)
    unknown = sorted(set(item) - {"name", "user_id", "properties", "occurred_at"})
    if unknown:
        raise Refused(f"{at}.{unknown[0]}: unknown field; an event has name, user_id, properties, occurred_at.",
                      f"{at}.{unknown[0]}")
    return {"name": _name(item.get("name"), f"{at}.name"),
            "user_key": _user_key(item.get("user_id"), f"{at}.user_id"),
            "properties": _properties(item.get("properties", {}), f"{at}.properties"),
            "occurred_at": _occurred_at(item.get("occurred_at"), f"{at}.occurred_at", window)}


def _name(name, field):
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        raise Refused(f"{field}: 1 to {MAX_NAME} printable characters.", field)
    name = name.strip()
    if name.startswith(PORTAL_PREFIX):
        raise Refused(f"{field}: names starting with {PORTAL_PREFIX!r} are the portal's own.", field)
    return name


def _user_key(value, field):
    """A user's id: a string of 1 to 120 printable characters, or a whole number."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_USER_KEY or not value.isprintable():
        raise Refused(f"{field}: a string of 1 to {MAX_USER_KEY} printable characters, or a whole number.", field)
    return value.strip()


def _properties(properties, field):
    """An object of at most 50 properties, each a string (≤ 500 characters), a number, true,
    false or null, under a key of 1 to 64 printable characters."""
    if not isinstance(properties, dict):
        raise Refused(f"{field}: an object.", field)
    if len(properties) > MAX_PROPERTIES:
        raise Refused(f"{field}: at most {MAX_PROPERTIES} properties.", field)
    for key, value in properties.items():
        where = f"{field}.{key}"[:200]
        if not key or len(key) > MAX_PROPERTY_KEY or not key.isprintable():
            raise Refused(f"{field}: a property's name is 1 to {MAX_PROPERTY_KEY} printable characters.", field)
        if isinstance(value, str):
            if len(value) > MAX_PROPERTY_TEXT:
                raise Refused(f"{where}: at most {MAX_PROPERTY_TEXT} characters.", where)
        elif isinstance(value, float) and not math.isfinite(value):
            raise Refused(f"{where}: a finite number.", where)
        elif value is not None and not isinstance(value, (bool, int, float)):
            raise Refused(f"{where}: a string, a number, true, false or null.", where)
    if len(json.dumps(properties)) > MAX_PROPERTIES_BYTES:
        raise Refused(f"{field}: at most {MAX_PROPERTIES_BYTES} bytes as JSON.", field)
    return properties


def _occurred_at(raw, field, window):
    """The event's time: now when not given, else an ISO 8601 time (UTC when it has no
    offset) within the accepted window."""
    if raw is None:
        return datetime.now(timezone.utc)
    try:
        when = datetime.fromisoformat(raw) if isinstance(raw, str) and len(raw) <= 40 else None
    except ValueError:
        when = None
    if when is None:
        raise Refused(f"{field}: an ISO 8601 time, such as 2026-11-30T14:00:00Z.", field)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if abs(when.utcoffset()) > MAX_OFFSET:
        raise Refused(f"{field}: a UTC offset of at most 14 hours.", field)
    earliest, latest = window
    if not earliest <= when <= latest:
        kept = ((latest - EVENT_FUTURE).date() - earliest.date()).days + 1
        raise Refused(f"{field}: from {earliest.date().isoformat()} (the plan keeps events {kept} days) "
                      "to 1 day ahead.", field)
    return when
