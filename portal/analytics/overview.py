"""Across tenants, for staff: the registry's own tables and the ingest's counts (events
per tenant and day, registry.tenant_activity_days; tenants and events per day,
registry.activity_days), never a tenant's storage, and a fixed number of queries
whatever the number of tenants. Quota pressure reads the day's API calls and the
measured storage of every served tenant from Redis in one pipeline."""
from datetime import datetime, timedelta, timezone

import redis
from sqlalchemy import text

from portal.extensions import db
from portal.models import WITH_STORAGE
from portal.services import ratelimit
from portal.services.keys import read_many, tenant_key

DAYS = 30
WEEKS = 12
TOP = 10

def overview():
    today = datetime.now(timezone.utc).date()
    since = today - timedelta(days=DAYS - 1)
    session = db.session
    counts = session.execute(text(
        "SELECT plan_code, tier, status, count(*) FROM registry.tenants GROUP BY 1, 2, 3")).all()
    weeks = session.execute(text("""
        WITH weeks AS (SELECT generate_series(date_trunc('week', now()) - interval '1 week' * (:weeks - 1),
                                              date_trunc('week', now()), interval '1 week') AS week)
        SELECT CAST(w.week AS date),
               (SELECT count(*) FROM registry.tenants t
                WHERE t.created_at >= w.week AND t.created_at < w.week + interval '1 week'),
               (SELECT count(*) FROM registry.tenants t
                WHERE t.archived_at >= w.week AND t.archived_at < w.week + interval '1 week')
        FROM weeks w ORDER BY 1"""), {"weeks": WEEKS}).all()
    activity = dict((d, (a, e)) for d, a, e in session.execute(text("""
        SELECT day, tenants, events FROM registry.activity_days WHERE day BETWEEN :since AND :today"""),
        {"since": since, "today": today}).all())
    ranked = session.execute(text("""
        WITH recent AS (
          SELECT tenant_id, coalesce(sum(events) FILTER (WHERE day > :today - 7), 0) AS week,
                 coalesce(sum(events) FILTER (WHERE day <= :today - 7), 0) AS week_before
          FROM registry.tenant_activity_days WHERE day > :today - 14 AND day <= :today GROUP BY tenant_id
        ), top AS (
          (SELECT 'activity' AS top, * FROM recent ORDER BY week DESC LIMIT :n)
          UNION ALL
          (SELECT 'growth', * FROM recent WHERE week > week_before ORDER BY week - week_before DESC LIMIT :n)
        )
        SELECT top.top, t.id, t.slug, t.name, t.plan_code, top.week, top.week_before
        FROM top JOIN registry.tenants t ON t.id = top.tenant_id"""), {"today": today, "n": TOP}).mappings().all()
    return {
        "by_plan": _totals(counts, 0), "by_tier": _totals(counts, 1), "by_status": _totals(counts, 2),
        "tenants": sum(r[3] for r in counts),
        "weeks": [{"week": w.isoformat(), "signups": s, "deprovisions": d} for w, s, d in weeks],
        "days": [{"day": (since + timedelta(days=n)).isoformat(),
                  "active": activity.get(since + timedelta(days=n), (0, 0))[0],
                  "events": int(activity.get(since + timedelta(days=n), (0, 0))[1])} for n in range(DAYS)],
        "top_activity": sorted((r for r in ranked if r["top"] == "activity"), key=lambda r: (-r["week"], r["slug"])),
        "top_growth": sorted((r for r in ranked if r["top"] == "growth"),
                             key=lambda r: (-(r["week"] - r["week_before"]), r["slug"])),
        "top_pressure": _pressure(),
    }


def _totals(counts, column):
    totals = {}
    for row in counts:
        totals[row[column]] = totals.get(row[column], 0) + row[3]
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def _pressure():
    """The served tenants nearest a limit: today's API calls and measured storage against
    their limits (overrides applied), in percent, highest first."""
    tenants = db.session.execute(text("SELECT id, slug, name, plan_code FROM registry.tenants "
                                      "WHERE status = ANY(:served)"), {"served": list(WITH_STORAGE)}).all()
    plans = {code: (api, storage) for code, api, storage in db.session.execute(text(
        "SELECT code, api_calls_per_day, storage_mb FROM registry.plans"))}
    overrides = {}
    for tenant_id, key, value in db.session.execute(text("""
            SELECT tenant_id, key, value FROM registry.tenant_overrides
            WHERE key IN ('limit:api_calls_per_day', 'limit:storage_mb')
              AND (expires_at IS NULL OR expires_at > now())""")):
        overrides.setdefault(tenant_id, {})[key] = value
    day, _ = ratelimit.day_window()
    api_key, storage_key = tenant_key("%s", "api", day), tenant_key("%s", "storage-bytes")
    keys = [key % row.id for row in tenants for key in (api_key, storage_key)]
    try:  # MGET in batches: one command per batch of keys, not one per key
        found = read_many(keys)
    except redis.RedisError:
        return []
    rows = []
    for n, tenant in enumerate(tenants):
        calls, size = int(found[2 * n] or 0), int(found[2 * n + 1] or 0)
        if not calls and not size:
            continue
        own = overrides.get(tenant.id, {})
        api_limit = own.get("limit:api_calls_per_day", plans[tenant.plan_code][0])
        storage_limit = own.get("limit:storage_mb", plans[tenant.plan_code][1])
        api = 100 * calls / api_limit if api_limit else None
        storage = 100 * size / 1_048_576 / storage_limit if storage_limit else None
        rows.append({"id": tenant.id, "slug": tenant.slug, "name": tenant.name, "api_calls": calls, "api_percent": api,
                     "storage_mb": round(size / 1_048_576, 1), "storage_percent": storage,
                     "pressure": max((p for p in (api, storage) if p is not None), default=0)})
    return sorted(rows, key=lambda r: (-r["pressure"], r["slug"]))[:TOP]
