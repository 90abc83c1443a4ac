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
that figure's key of each in one pipeline of MGETs (MGET_BATCH keys each; by pressure,
all four figures of each, and the page reuses them), the sort is made here, and the
page's other figures come in one more pipeline."""
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
    else every served tenant's. One statement. A row is (id as text, slug, name,
    plan_code[, the plan's four limits, its limit overrides in force or None])."""
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
        SELECT total.n AS total, c.id::text AS id, c.slug, c.name, c.plan_code {limits}
        FROM total LEFT JOIN chosen c ON true {joins}
        {outer_order}"""),
        {"served": list(WITH_STORAGE), "per_page": per_page, "offset": (page - 1) * per_page}).all()
    total = rows[0].total if rows else 0
    return total, [row for row in rows if row.id is not None]


def _key_templates(names):
    """Each figure's Redis key with "%s" for the tenant id (keys.tenant_key's form)."""
    minute, _ = ratelimit.minute_window()
    day, _ = ratelimit.day_window()
    parts = {"users": ("users-seen",), "storage": ("storage-seen",), "api": ("api", day), "rpm": ("rpm", minute),
             "slow": ("slow", day)}
    return [tenant_key("%s", *parts[name]) for name in names]


def _read(rows, names):
    """Each row's Redis figures `names`, flat (row by row, name by name: bytes or None),
    in one pipeline of MGETs of MGET_BATCH keys; None when Redis cannot be read."""
    templates = _key_templates(names)
    keys = [template % row.id for row in rows for template in templates]
    try:
        pipe = redis_holder.client.pipeline(transaction=False)
        for i in range(0, len(keys), MGET_BATCH):
            pipe.mget(keys[i:i + MGET_BATCH])
        return [value for batch in pipe.execute() for value in batch]
    except redis.RedisError:
        return None


def _figures(rows, names, slowest=False, values=None):
    """[{name: value}] of each row's Redis figures `names` (of users, storage (bytes),
    api, rpm, slow), and with `slowest` its slowest statement today; a counter absent is
    0 in its window, a measure absent None (not measured). `values`: what _read gave for
    these rows and names, if read already. None when Redis cannot be read."""
    if values is None:
        values = _read(rows, names)
        if values is None:
            return None
    counters = [name in COUNTERS for name in names]
    n, found = len(names), []
    for i in range(len(rows)):
        own = values[i * n:(i + 1) * n]
        found.append({name: (0 if counter else None) if v is None else int(v)
                      for name, counter, v in zip(names, counters, own, strict=True)})
    if slowest:
        day, _ = ratelimit.day_window()
        try:
            pipe = redis_holder.client.pipeline(transaction=False)
            for row in rows:
                pipe.zrevrange(tenant_key(row.id, "slowest", day), 0, 0, withscores=True)
            replies = pipe.execute()
        except redis.RedisError:
            return None
        for figures, best in zip(found, replies, strict=True):
            figures["slowest"] = (best[0][0], round(best[0][1])) if best else None
    return found


def _choose(rows, total, sort, page, per_page, value_of):
    """(page number, the page's rows): when the database made the page, its rows; else
    `rows` ordered by `value_of(row, i)` (None: unknown, last whatever the direction; ties
    by slug) and cut. A page past the last shows as the last does."""
    page = min(page, max(1, -(-total // per_page)))
    if sort.key in REGISTRY_ORDER:
        return page, rows
    keyed = [(value_of(row, i), row) for i, row in enumerate(rows)]
    known = sorted((k for k in keyed if k[0] is not None), key=lambda k: k[1].slug)
    known.sort(key=lambda k: k[0], reverse=sort.direction == "desc")  # stable: ties stay by slug
    unknown = sorted((k for k in keyed if k[0] is None), key=lambda k: k[1].slug)
    ordered = [row for _, row in known + unknown]
    return page, ordered[(page - 1) * per_page:page * per_page]


def _percent(used, limit):
    return None if not limit or used is None else round(100 * used / limit, 1)


def _limits(row):
    """The row's four limits with its overrides in force applied (bounded as
    portal.services.entitlements does)."""
    if not row.overrides:
        return row.max_users, row.storage_mb, row.api_calls_per_day, row.requests_per_minute
    found = []
    for name in LIMITS:
        plan_value, key = getattr(row, name), f"limit:{name}"
        found.append(bounded_limit(name, row.overrides[key], plan_value) if key in row.overrides else plan_value)
    return tuple(found)


PRESSURE_FIGURES = ("users", "storage", "api", "rpm")
PRESSURE_COLUMN = {"users": 0, "storage": 1, "api": 2, "rpm": 3}


def _pressure_of(limits, figures):
    """(measures {key: (used, limit)}, percents, pressure: the highest percent, 0 if none)."""
    storage = figures["storage"]
    measures = {
        "users": (figures["users"], limits[0]),
        "storage_mb": (None if storage is None else round(storage / MB, 2), limits[1]),
        "api_today": (figures["api"], limits[2]),
        "rpm": (figures["rpm"], limits[3]),
    }
    percents = {k: _percent(used, limit) for k, (used, limit) in measures.items()}
    return measures, percents, max((p for p in percents.values() if p is not None), default=0)


def _pressures(rows, values):
    """Every row's pressure (as _pressure_of gives it) from the flat figures of
    PRESSURE_FIGURES that _read gave: a tight loop, for every served tenant."""
    found = []
    for i, row in enumerate(rows):
        limits = _limits(row)
        users, storage, api, rpm = values[4 * i:4 * i + 4]
        used = (None if users is None else int(users), None if storage is None else round(int(storage) / MB, 2),
                int(api or 0), int(rpm or 0))  # an absent measure is unknown, an absent counter 0
        found.append(max((round(100 * u / limit, 1) for u, limit in zip(used, limits, strict=True)
                          if u is not None and limit), default=0))
    return found


def pressure(sort, page=1, per_page=50):
    """(Page of rows, Redis readable): each served tenant's use of its limits and its
    pressure (its highest percent of a limit)."""
    total, rows = _served(sort, page, per_page, with_limits=True)
    everyone = None
    if sort.key == "pressure":  # every figure of everyone: read once, the page's reused
        everyone = _read(rows, PRESSURE_FIGURES)
        tops = None if everyone is None else _pressures(rows, everyone)
        page, chosen = _choose(rows, total, sort, page, per_page, lambda row, i: None if tops is None else tops[i])
    elif sort.key in PRESSURE_COLUMN:
        one = _figures(rows, (sort.key,))
        page, chosen = _choose(rows, total, sort, page, per_page,
                               lambda row, i: None if one is None else one[i][sort.key])
    else:
        page, chosen = _choose(rows, total, sort, page, per_page, None)
    if everyone is not None:
        index = {row.id: i for i, row in enumerate(rows)}
        n = len(PRESSURE_FIGURES)
        figures = _figures(chosen, PRESSURE_FIGURES, values=[
            v for row in chosen for v in everyone[n * index[row.id]:n * index[row.id] + n]])
    else:
        figures = _figures(chosen, PRESSURE_FIGURES)
    readable = figures is not None
    items = []
    for i, row in enumerate(chosen):
        measures, percents, top = _pressure_of(_limits(row), figures[i] if readable else
                                               dict.fromkeys(PRESSURE_FIGURES))
        items.append({"tenant": row, "measures": measures, "percents": percents, "pressure": top})
    return Page(items=items, total=total, page=page, per_page=per_page), readable


TOP_FIGURES = ("rpm", "api", "storage", "slow")
TOP_COLUMN = {"requests": "rpm", "api": "api", "storage": "storage", "slow": "slow"}


def top_consumers(sort, page=1, per_page=50):
    """(Page of rows, Redis readable): each served tenant's requests this minute, API
    calls today, last measured storage, slow statements today (each at least
    PORTAL_SLOW_STATEMENT_MS) and, for the page's rows, its slowest statement today."""
    total, rows = _served(sort, page, per_page, with_limits=False)
    if sort.key in TOP_COLUMN:
        name = TOP_COLUMN[sort.key]
        one = _figures(rows, (name,))
        page, chosen = _choose(rows, total, sort, page, per_page, lambda row, i: None if one is None else one[i][name])
    else:
        page, chosen = _choose(rows, total, sort, page, per_page, None)
    figures = _figures(chosen, TOP_FIGURES, slowest=True)
    readable = figures is not None
    items = []
    for i, row in enumerate(chosen):
        got = figures[i] if readable else dict.fromkeys((*TOP_FIGURES, "slowest"))
        items.append({"tenant": row, "requests": got["rpm"], "api": got["api"], "storage": got["storage"],
                      "slow": got["slow"], "slowest": got["slowest"]})
    return Page(items=items, total=total, page=page, per_page=per_page), readable
