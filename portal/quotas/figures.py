"""The snapshot of every served tenant's figures that Quotas and Top consumers sort by.

Each tenant's figures live in Redis (requests this minute and API calls today:
portal/services/ratelimit.py; slow statements today: portal/quotas/limits.py; users and
storage as last measured: `metering.remember_seen`). A staff page sorted by one of them
cannot choose its 50 rows without every served tenant's figure, and reading ~50,000 keys
and sorting in Python on every view costs several hundred ms at 10,000 tenants.

So the figures are copied into `registry.tenant_figures`, with each tenant's pressure
(its highest percent of a limit in force) worked out on the way, as of
`registry.figure_snapshots.taken_at`; the pages sort and cut in one statement
(portal/quotas/services.py). A page that finds the snapshot older than
CONSOLE_FIGURES_MAX_AGE_SECONDS refreshes it first, in its own request: one whole read of
Redis and one write. An advisory lock makes that one refresh at a time; a page that does
not get the lock shows the snapshot as it is. When Redis cannot be read, the snapshot
stays as it was and the page says so.
"""
import time

import redis
from sqlalchemy import text

from portal.extensions import db
from portal.models import WITH_STORAGE
from portal.models.plan import bounded_limit
from portal.services import ratelimit
from portal.services.keys import read_many, tenant_key

SNAPSHOT = "tenants"
REFRESH_LOCK = 7_150_015  # pg_try_advisory_xact_lock key: one refresh at a time
MB = 1_048_576
LIMITS = ("max_users", "storage_mb", "api_calls_per_day", "requests_per_minute")
FIGURES = ("users", "storage", "api", "rpm", "slow")  # as read from Redis, in this order


def limits_in_force(row):
    """The row's four limits (the plan's `LIMITS` columns and `overrides`: its limit
    overrides in force, or None) with the overrides applied, bounded as
    portal.services.entitlements does."""
    if not row.overrides:
        return row.max_users, row.storage_mb, row.api_calls_per_day, row.requests_per_minute
    found = []
    for name in LIMITS:
        plan_value, key = getattr(row, name), f"limit:{name}"
        found.append(bounded_limit(name, row.overrides[key], plan_value) if key in row.overrides else plan_value)
    return tuple(found)


# The limits in force of tenants (`c`: a relation with `id` and `plan_code`): the
# plan's columns and the limit overrides in force, as limits_in_force reads them.
LIMIT_COLUMNS = "p.max_users, p.storage_mb, p.api_calls_per_day, p.requests_per_minute, o.overrides"
LIMIT_JOINS = """LEFT JOIN registry.plans p ON p.code = c.plan_code
    LEFT JOIN (SELECT tenant_id, jsonb_object_agg(key, coalesce(value, 'null'::jsonb)) AS overrides
               FROM registry.tenant_overrides
               WHERE key LIKE 'limit:%' AND (expires_at IS NULL OR expires_at > now())
               GROUP BY tenant_id) o ON o.tenant_id = c.id"""


def pressure_of(limits, used):
    """The highest percent of a limit that `used` (users, storage in MB, API calls today,
    requests this minute; None: unknown) reaches; 0 if none is known or limited."""
    return max((round(100 * u / limit, 1) for u, limit in zip(used, limits, strict=True)
                if u is not None and limit), default=0)


def _read_redis(ids):
    """Every tenant's FIGURES, flat (tenant by tenant, figure by figure: str or None), in
    one pipeline of MGETs; None when Redis cannot be read."""
    minute, _ = ratelimit.minute_window()
    day, _ = ratelimit.day_window()
    templates = [tenant_key("%s", "users-seen"), tenant_key("%s", "storage-seen"), tenant_key("%s", "api", day),
                 tenant_key("%s", "rpm", minute), tenant_key("%s", "slow", day)]
    keys = [template % tenant_id for tenant_id in ids for template in templates]
    try:
        return read_many(keys)
    except redis.RedisError:
        return None


def refresh():
    """Take the snapshot now, in the session's transaction (the caller commits). False,
    and nothing changed, when Redis cannot be read."""
    began = time.perf_counter()
    rows = db.session.execute(text(f"""
        SELECT c.id::text AS id, {LIMIT_COLUMNS}
        FROM registry.tenants c {LIMIT_JOINS}
        WHERE c.status = ANY(:served)"""), {"served": list(WITH_STORAGE)}).all()
    values = _read_redis([row.id for row in rows])
    if values is None:
        return False
    n = len(FIGURES)
    columns = {"ids": [], "users": [], "storage": [], "api": [], "rpm": [], "slow": [], "pressure": []}
    for i, row in enumerate(rows):
        users, storage, api, rpm, slow = values[n * i:n * i + n]
        users = None if users is None else int(users)  # a measure absent is unknown,
        storage = None if storage is None else int(storage)
        api, rpm, slow = int(api or 0), int(rpm or 0), int(slow or 0)  # a counter absent is 0
        columns["ids"].append(row.id)
        columns["users"].append(users)
        columns["storage"].append(storage)
        columns["api"].append(api)
        columns["rpm"].append(rpm)
        columns["slow"].append(slow)
        columns["pressure"].append(pressure_of(limits_in_force(row), (
            users, None if storage is None else round(storage / MB, 2), api, rpm)))
    db.session.execute(text("DELETE FROM registry.tenant_figures"))
    db.session.execute(text("""
        INSERT INTO registry.tenant_figures (tenant_id, users, storage_bytes, api_today, rpm, slow_today, pressure)
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:users AS integer[]), CAST(:storage AS bigint[]),
                             CAST(:api AS integer[]), CAST(:rpm AS integer[]), CAST(:slow AS integer[]),
                             CAST(:pressure AS double precision[]))"""), columns)
    db.session.execute(text("""
        INSERT INTO registry.figure_snapshots (name, taken_at, took_ms) VALUES (:name, clock_timestamp(), :took)
        ON CONFLICT (name) DO UPDATE SET taken_at = excluded.taken_at, took_ms = excluded.took_ms"""),
        {"name": SNAPSHOT, "took": round((time.perf_counter() - began) * 1000)})
    return True


def fresh(max_age_seconds):
    """(when the snapshot was taken, or None if never; whether Redis could be read):
    refreshed first, and committed, when older than `max_age_seconds` and no other
    refresh is under way."""
    taken_at, stale = _taken(max_age_seconds)
    if not stale:
        return taken_at, True
    readable = True
    if db.session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": REFRESH_LOCK}).scalar_one():
        readable = refresh()
        db.session.commit()  # the lock goes with the transaction
        taken_at, _ = _taken(max_age_seconds)
    return taken_at, readable


def _taken(max_age_seconds):
    """(taken_at or None, whether older than `max_age_seconds` or never taken)."""
    row = db.session.execute(text(
        "SELECT taken_at, clock_timestamp() - taken_at >= make_interval(secs => :age) AS stale "
        "FROM registry.figure_snapshots WHERE name = :name"),
        {"name": SNAPSHOT, "age": max_age_seconds}).one_or_none()
    return (None, True) if row is None else (row.taken_at, row.stale)
