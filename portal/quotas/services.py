"""Across tenants, for staff: quota pressure and top consumers, every served tenant, in
pages.

Each page is one registry query (the served tenants with their plan's limits and their
limit overrides in force, and a count of all) and one pipelined read of Redis: the
counters (requests this minute, API calls and slow statements today) and the last
measures (users, storage: `metering.remember_seen`) live there, per tenant. Nothing
opens a tenant's storage: a figure no one has measured lately shows as not measured.

Sorted by the tenant or its plan, the database picks the page and Redis is read for its
rows only. Sorted by a figure held in Redis, the page can only be chosen once every
served tenant's figure is known: the registry rows of all of them come in the one query,
their keys in one pipeline of MGETs (MGET_BATCH keys each), and the sort is made here."""
from dataclasses import dataclass

import redis
from sqlalchemy import text

from portal.extensions import db, redis_holder
from portal.models import WITH_STORAGE
from portal.models.plan import bounded_limit
from portal.services import ratelimit
from portal.services.keys import tenant_key
from portal.services.pagination import Page

MGET_BATCH = 2000
MB = 1_048_576
# sort key: (what it reads, default direction). "registry" sorts are made by the database.
PRESSURE_SORTS = {"pressure": "desc", "tenant": "asc", "plan": "asc", "users": "desc", "storage": "desc",
                  "api": "desc", "rpm": "desc"}
TOP_SORTS = {"requests": "desc", "tenant": "asc", "api": "desc", "storage": "desc", "slow": "desc"}
REGISTRY_ORDER = {"tenant": "slug", "plan": "plan_code, slug"}
COUNTERS = ("api", "rpm", "slow")  # counts of a window: absent is 0
LIMITS = ("max_users", "storage_mb", "api_calls_per_day", "requests_per_minute")


@dataclass(frozen=True)
class Sort:
    key: str
    direction: str

    @classmethod
    def from_args(cls, args, sorts, default):
        """The sort of a URL: an unknown key is the default sort, an unknown direction the
        key's own."""
        key = args.get("sort")
        key = key if key in sorts else default
        direction = args.get("dir")
        return cls(key, direction if direction in ("asc", "desc") else sorts[key])


def _served(sort, page, per_page, with_limits):
    """(count of all served tenants, rows): the page's rows when `sort` is the registry's,
    else every served tenant's. One statement."""
    paged = sort.key in REGISTRY_ORDER
    order = outer_order = ""
    if paged:
        columns = [c.strip() for c in REGISTRY_ORDER[sort.key].split(",")]
        order = "ORDER BY " + ", ".join(f"{c} {sort.direction}" for c in columns)
        outer_order = "ORDER BY " + ", ".join(f"c.{c} {sort.direction}" for c in columns)
    window = "LIMIT :per_page OFFSET (SELECT least(:offset, (greatest(n, 1) - 1) / :per_page * :per_page) " \
             "FROM total)" if paged else ""
    limits = """, p.max_users, p.storage_mb, p.api_calls_per_day, p.requests_per_minute, o.overrides""" \
        if with_limits else ""
    joins = """LEFT JOIN registry.plans p ON p.code = c.plan_code
               LEFT JOIN (SELECT tenant_id, jsonb_object_agg(key, coalesce(value, 'null'::jsonb)) AS overrides
                          FROM registry.tenant_overrides
                          WHERE key LIKE 'limit:%' AND (expires_at IS NULL OR expires_at > now())
                          GROUP BY tenant_id) o ON o.tenant_id = c.id""" if with_limits else ""
    rows = db.session.execute(text(f"""
        WITH served AS (SELECT id, slug, name, plan_code FROM registry.tenants WHERE status = ANY(:served)),
             total AS (SELECT count(*) AS n FROM served),
             chosen AS (SELECT * FROM served {order} {window})
        SELECT total.n AS total, c.id, c.slug, c.name, c.plan_code {limits}
        FROM total LEFT JOIN chosen c ON true {joins}
        {outer_order}"""),
        {"served": list(WITH_STORAGE), "per_page": per_page, "offset": (page - 1) * per_page}).all()
    total = rows[0].total if rows else 0
    return total, [row for row in rows if row.id is not None]


def _redis_values(keys):
    """The values of `keys` (None where absent) in one pipeline of MGETs; None when Redis
    cannot be read."""
    try:
        pipe = redis_holder.client.pipeline(transaction=False)
        for i in range(0, len(keys), MGET_BATCH):
            pipe.mget(keys[i:i + MGET_BATCH])
        return [value for batch in pipe.execute() for value in batch]
    except redis.RedisError:
        return None


def _int(value):
    return None if value is None else int(value)


def _measured(rows, names):
    """{tenant id: {name: value}} of each row's Redis figures `names` (of users, storage
    (bytes), api, rpm, slow); a counter absent is 0 in its window, a measure absent is
    None (not measured); every figure None when Redis cannot be read."""
    minute, _ = ratelimit.minute_window()
    day, _ = ratelimit.day_window()
    parts = {"users": ("users-seen",), "storage": ("storage-seen",), "api": ("api", day), "rpm": ("rpm", minute),
             "slow": ("slow", day)}
    keys = [tenant_key(row.id, *parts[name]) for row in rows for name in names]
    values = _redis_values(keys)
    result, n = {}, len(names)
    for i, row in enumerate(rows):
        if values is None:
            result[row.id] = dict.fromkeys(names)
            continue
        own = zip(names, values[i * n:(i + 1) * n], strict=True)
        result[row.id] = {name: 0 if v is None and name in COUNTERS else _int(v) for name, v in own}
    return result, values is not None


def _in_order(items, value_of, sort):
    """`items` in `sort` order of `value_of(item)`, unknown figures last whatever the
    direction, ties by slug."""
    known = [item for item in items if value_of(item) is not None]
    unknown = [item for item in items if value_of(item) is None]
    known.sort(key=lambda item: item["tenant"].slug)
    known.sort(key=value_of, reverse=sort.direction == "desc")  # stable: ties stay by slug
    return known + sorted(unknown, key=lambda item: item["tenant"].slug)


def _one_page(items, total, page, per_page, sort):
    """Page `page` of `items` (all of them unless the database made the page); a page
    past the last shows as the last does."""
    pages = max(1, -(-total // per_page))
    page = min(page, pages)
    if sort.key not in REGISTRY_ORDER:
        items = items[(page - 1) * per_page:page * per_page]
    return Page(items=items, total=total, page=page, per_page=per_page)


def _percent(used, limit):
    return None if not limit or used is None else round(100 * used / limit, 1)


def _limits(row):
    """The row's four limits with its overrides in force applied (bounded as
    portal.services.entitlements does)."""
    overrides = row.overrides or {}
    found = {}
    for name in LIMITS:
        plan_value = getattr(row, name)
        key = f"limit:{name}"
        found[name] = bounded_limit(name, overrides[key], plan_value) if key in overrides else plan_value
    return found


def pressure(sort, page=1, per_page=50):
    """(Page of rows, Redis readable): each served tenant's use of its limits and its
    pressure (its highest percent of a limit)."""
    total, rows = _served(sort, page, per_page, with_limits=True)
    figures, readable = _measured(rows, ("users", "storage", "api", "rpm"))
    items = []
    for row in rows:
        got, limits = figures[row.id], _limits(row)
        storage = got["storage"]
        measures = {
            "users": (got["users"], limits["max_users"]),
            "storage_mb": (None if storage is None else round(storage / MB, 2), limits["storage_mb"]),
            "api_today": (got["api"], limits["api_calls_per_day"]),
            "rpm": (got["rpm"], limits["requests_per_minute"]),
        }
        percents = {k: _percent(used, limit) for k, (used, limit) in measures.items()}
        top = max((p for p in percents.values() if p is not None), default=0)
        items.append({"tenant": row, "measures": measures, "percents": percents, "pressure": top})
    column = {"users": "users", "storage": "storage_mb", "api": "api_today", "rpm": "rpm"}.get(sort.key)
    if column is not None:
        items = _in_order(items, lambda item: item["measures"][column][0], sort)
    elif sort.key == "pressure":
        items = _in_order(items, lambda item: item["pressure"], sort)
    return _one_page(items, total, page, per_page, sort), readable


def top_consumers(sort, page=1, per_page=50):
    """(Page of rows, Redis readable): each served tenant's requests this minute, API
    calls today, last measured storage, slow statements today (each at least
    PORTAL_SLOW_STATEMENT_MS) and, for the page's rows, its slowest statement today."""
    total, rows = _served(sort, page, per_page, with_limits=False)
    figures, readable = _measured(rows, ("rpm", "api", "storage", "slow"))
    items = [{"tenant": row, "requests": figures[row.id]["rpm"], "api": figures[row.id]["api"],
              "storage": figures[row.id]["storage"], "slow": figures[row.id]["slow"], "slowest": None}
             for row in rows]
    if sort.key != "tenant":
        items = _in_order(items, lambda item: item[sort.key], sort)
    result = _one_page(items, total, page, per_page, sort)
    _add_slowest(result.items)
    return result, readable


def _add_slowest(items):
    """Each item's slowest statement today, (statement, ms), in one pipeline."""
    if not items:
        return
    day, _ = ratelimit.day_window()
    try:
        pipe = redis_holder.client.pipeline(transaction=False)
        for item in items:
            pipe.zrevrange(tenant_key(item["tenant"].id, "slowest", day), 0, 0, withscores=True)
        found = pipe.execute()
    except redis.RedisError:
        return
    for item, best in zip(items, found, strict=True):
        item["slowest"] = (best[0][0], round(best[0][1])) if best else None
