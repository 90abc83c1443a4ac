"""Across tenants, for staff: quota pressure and top consumers, every served tenant, in
pages, sorted by any column.

A page is one statement: the served tenants (and their count) left-joined to the snapshot
of their figures (portal/quotas/figures.py: requests this minute, API calls and slow
statements today, users and storage as last measured, and the pressure), sorted and cut
by the database, with the page's rows' limits in force. A tenant served since the
snapshot shows its figures as unknown until the next. Only Top consumers' slowest
statement today is read from Redis, for the page's rows."""
from dataclasses import dataclass

import redis
from flask import current_app
from sqlalchemy import text

from portal.extensions import db, redis_holder
from portal.models import WITH_STORAGE
from portal.quotas import figures as snapshot
from portal.services import ratelimit
from portal.services.keys import tenant_key
from portal.services.pagination import Page

MB = snapshot.MB
PRESSURE_SORTS = {"pressure": "desc", "tenant": "asc", "plan": "asc", "users": "desc", "storage": "desc",
                  "api": "desc", "rpm": "desc"}
TOP_SORTS = {"requests": "desc", "tenant": "asc", "api": "desc", "storage": "desc", "slow": "desc"}
# sort key: its columns. A registry column takes the sort's direction; a figure sorts
# unknown (no snapshot yet) last whatever the direction, and ties by slug.
REGISTRY_ORDER = {"tenant": ("slug",), "plan": ("plan_code", "slug")}
FIGURE_COLUMN = {"users": "users", "storage": "storage_bytes", "api": "api_today", "rpm": "rpm",
                 "requests": "rpm", "slow": "slow_today", "pressure": "pressure"}


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


def _order(sort, table, slug_table=None):
    """ORDER BY of `sort` on `table`'s columns (the slug, a tie-break, on `slug_table`'s)."""
    if sort.key in REGISTRY_ORDER:
        return ", ".join(f"{table}.{c} {sort.direction}" for c in REGISTRY_ORDER[sort.key])
    return f"{table}.{FIGURE_COLUMN[sort.key]} {sort.direction} NULLS LAST, {slug_table or table}.slug asc"


def _page(sort, page, per_page):
    """(page number, count of all served tenants, the page's rows): one statement. A row is
    (id as text, slug, name, plan_code, its snapshot figures or None, its plan's four
    limits, its limit overrides in force or None). A page past the last is the last."""
    rows = db.session.execute(text(f"""
        WITH total AS (SELECT count(*) AS n FROM registry.tenants WHERE status = ANY(:served)),
             chosen AS (SELECT t.id, t.slug, t.name, t.plan_code, f.users, f.storage_bytes, f.api_today,
                               f.rpm, f.slow_today, f.pressure
                        FROM registry.tenants t LEFT JOIN registry.tenant_figures f ON f.tenant_id = t.id
                        WHERE t.status = ANY(:served)
                        ORDER BY {_order(sort, "t" if sort.key in REGISTRY_ORDER else "f", "t")}
                        LIMIT :per_page
                        OFFSET (SELECT least(:offset, (greatest(n, 1) - 1) / :per_page * :per_page) FROM total))
        SELECT total.n AS total, c.id::text AS id, c.slug, c.name, c.plan_code, c.users, c.storage_bytes,
               c.api_today, c.rpm, c.slow_today, c.pressure, {snapshot.LIMIT_COLUMNS}
        FROM total LEFT JOIN chosen c ON true {snapshot.LIMIT_JOINS}
        ORDER BY {_order(sort, "c")}"""),
        {"served": list(WITH_STORAGE), "per_page": per_page, "offset": (page - 1) * per_page}).all()
    total = rows[0].total if rows else 0
    return min(page, max(1, -(-total // per_page))), total, [row for row in rows if row.id is not None]


def _percent(used, limit):
    return None if not limit or used is None else round(100 * used / limit, 1)


def _measures(row):
    """The row's measures {key: (used, limit in force)} and their percents."""
    limits = snapshot.limits_in_force(row)
    storage = None if row.storage_bytes is None else round(row.storage_bytes / MB, 2)
    measures = {"users": (row.users, limits[0]), "storage_mb": (storage, limits[1]),
                "api_today": (row.api_today, limits[2]), "rpm": (row.rpm, limits[3])}
    return measures, {k: _percent(used, limit) for k, (used, limit) in measures.items()}


def pressure(sort, page=1, per_page=50):
    """(Page of rows, when the figures were taken, Redis readable): each served tenant's
    use of its limits and its pressure (its highest percent of a limit)."""
    taken_at, readable = snapshot.fresh(current_app.config["CONSOLE_FIGURES_MAX_AGE_SECONDS"])
    page, total, rows = _page(sort, page, per_page)
    items = []
    for row in rows:
        measures, percents = _measures(row)
        items.append({"tenant": row, "measures": measures, "percents": percents, "pressure": row.pressure})
    return Page(items=items, total=total, page=page, per_page=per_page), taken_at, readable


def _slowest(rows):
    """Each row's slowest statement today ((text, ms) or None), in one pipeline; None
    when Redis cannot be read."""
    day, _ = ratelimit.day_window()
    try:
        pipe = redis_holder.client.pipeline(transaction=False)
        for row in rows:
            pipe.zrevrange(tenant_key(row.id, "slowest", day), 0, 0, withscores=True)
        replies = pipe.execute()
    except redis.RedisError:
        return None
    return [(best[0][0], round(best[0][1])) if best else None for best in replies]


def top_consumers(sort, page=1, per_page=50):
    """(Page of rows, when the figures were taken, Redis readable): each served tenant's
    requests this minute, API calls today, last measured storage, slow statements today
    (each at least PORTAL_SLOW_STATEMENT_MS) and, for the page's rows, its slowest
    statement today."""
    taken_at, readable = snapshot.fresh(current_app.config["CONSOLE_FIGURES_MAX_AGE_SECONDS"])
    page, total, rows = _page(sort, page, per_page)
    slowest = _slowest(rows)
    readable = readable and slowest is not None
    items = [{"tenant": row, "requests": row.rpm, "api": row.api_today, "storage": row.storage_bytes,
              "slow": row.slow_today, "slowest": slowest[i] if slowest else None} for i, row in enumerate(rows)]
    return Page(items=items, total=total, page=page, per_page=per_page), taken_at, readable
