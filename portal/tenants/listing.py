"""The staff console's tenant list at any size: keyset pages, indexed search, CSV.

Pages are keyset pages: a page's link names the row it follows (`after=<sort value>,<id>`)
or precedes (`before=`), and the database reads from there along an index of (sort key,
id) (registry migration 0013), so the last page (`last=1`: the first page of the
reversed order) and a deep page cost what the first does. A cursor the page cannot read,
or one past either end, shows the first or the last page: never an error.

Search by slug or name goes through an index: trigram (pg_trgm) GIN indexes match
anywhere in the text; where the server could not make the extension, the migration made
btree indexes for prefix search instead. Which pair exists is read once per app
(`search_mode`).

The CSV is the list with the page's filters and sort, every row, streamed as the rows come
from a server-side cursor (`yield_per`)."""
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from flask import current_app
from sqlalchemy import Connection, func, or_, select, text, tuple_

from portal.extensions import db
from portal.models import TENANT_STATUSES, TENANT_TIERS, Tenant
from portal.services import csv_export
from portal.tenants.services import SORTS  # the list's sort columns: one table for both

CSV_COLUMNS = ("id", "slug", "name", "status", "tier", "plan", "created_at", "archived_at")
MAX_CURSOR = 400
CSV_BATCH = 500  # rows fetched from the server-side cursor, and written, at a time


@dataclass
class KeysetPage:
    items: list
    total: int
    per_page: int
    previous: Optional[str] = None  # the `before` cursor of the page before, None on the first
    next: Optional[str] = None  # the `after` cursor of the page after, None on the last
    cursor_refused: bool = False  # the URL's cursor could not be read: the first page instead

    @property
    def pages(self):
        return max(1, -(-self.total // self.per_page))


@dataclass
class Filters:
    q: str = ""
    status: str = ""
    plan: str = ""
    tier: str = ""
    sort: str = "slug"
    direction: str = "asc"

    @classmethod
    def from_args(cls, args):
        """The list's filters from a URL: unknown values are dropped (the list unfiltered
        by them), never an error."""
        def one_of(name, allowed, default=""):
            value = args.get(name, default)
            return value if value in allowed else default

        return cls(q=args.get("q", "").replace("\x00", "").strip()[:100], status=one_of("status", TENANT_STATUSES),
                   plan=args.get("plan", "").replace("\x00", "")[:32], tier=one_of("tier", TENANT_TIERS),
                   sort=one_of("sort", SORTS, "slug"), direction="desc" if args.get("dir") == "desc" else "asc")

    def args(self):
        """The URL arguments that give this list again (empty ones left out)."""
        found = {"q": self.q, "status": self.status, "plan": self.plan, "tier": self.tier}
        return {**{k: v for k, v in found.items() if v}, "sort": self.sort, "dir": self.direction}


def search_mode():
    """How search by slug or name is served: "trigram" (pg_trgm GIN indexes: anywhere in
    the text), "prefix" (the fallback btree indexes: from the start), or "scan" (neither
    index: a database not migrated to 0013; anywhere, by reading every row). Read once
    per app."""
    cached = current_app.extensions.get("portal.tenant_search_mode")
    if cached is None:
        found = db.session.execute(text(
            "SELECT to_regclass('registry.ix_tenants_slug_trgm') IS NOT NULL, "
            "to_regclass('registry.ix_tenants_slug_prefix') IS NOT NULL")).one()
        cached = "trigram" if found[0] else "prefix" if found[1] else "scan"
        current_app.extensions["portal.tenant_search_mode"] = cached
    return cached


def _like(q):
    return q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def where(filters):
    """The conditions of `filters` (search, status, plan, tier)."""
    conditions = []
    if filters.q:
        if search_mode() == "prefix":
            pattern = _like(filters.q) + "%"
            conditions.append(or_(func.lower(Tenant.slug).like(pattern), func.lower(Tenant.name).like(pattern)))
        else:
            pattern = "%" + _like(filters.q) + "%"
            conditions.append(or_(Tenant.slug.like(pattern), func.lower(Tenant.name).like(pattern)))
    if filters.status:
        conditions.append(Tenant.status == filters.status)
    if filters.plan:
        conditions.append(Tenant.plan_code == filters.plan)
    if filters.tier:
        conditions.append(Tenant.tier == filters.tier)
    return conditions


def cursor_of(value, tenant_id):
    """The cursor naming a row's place in the list: "<its sort value>,<its id>" (the
    value as the database gave it: lower(name) is PostgreSQL's, not Python's)."""
    return f"{value.isoformat() if isinstance(value, datetime) else value},{tenant_id}"


def read_cursor(raw, sort):
    """(sort value, id) from a cursor, or None when it is not one."""
    if not raw or len(raw) > MAX_CURSOR:
        return None
    value, _, tenant_id = raw.rpartition(",")
    try:
        tenant_id = uuid.UUID(tenant_id)
        if sort == "created":
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                return None
    except ValueError:
        return None
    if isinstance(value, str) and "\x00" in value:
        return None
    return value, tenant_id


def keyset_page(filters, after=None, before=None, last=False, per_page=50):
    """One page of the list: the first, the one after cursor `after`, the one before
    cursor `before`, or the last. A count of all the list's rows comes with it."""
    conditions = where(filters)
    total = db.session.execute(select(func.count()).select_from(Tenant).where(*conditions)).scalar_one()
    column = SORTS[filters.sort]
    key = tuple_(column, Tenant.id)
    forward = filters.direction == "asc"
    raw_cursor = after or before
    cursor = read_cursor(raw_cursor, filters.sort) if raw_cursor else None
    refused = raw_cursor is not None and cursor is None

    def fetch(from_end, bound=None):
        """per_page + 1 rows in the list's order (from its end with `from_end`, returned
        in the list's order), after (or, from the end, before) `bound`."""
        ascending = forward != from_end
        query = select(Tenant, column.label("sort_key")).where(*conditions)
        if bound is not None:
            query = query.where(key > tuple_(*bound) if ascending else key < tuple_(*bound))
        order = (column.asc(), Tenant.id.asc()) if ascending else (column.desc(), Tenant.id.desc())
        rows = db.session.execute(query.order_by(*order).limit(per_page + 1)).all()
        more = len(rows) > per_page
        rows = rows[:per_page]
        return (rows[::-1] if from_end else rows), more

    if cursor is not None and after:
        rows, more = fetch(False, cursor)
        if rows:
            return _page(rows, total, per_page, previous=True, following=more)
        last = True  # past the end: the last page
    elif cursor is not None and before:
        rows, more = fetch(True, cursor)
        if more:
            return _page(rows, total, per_page, previous=True, following=True)
        # at (or past) the start: the first page
    if last:
        rows, more = fetch(True)
        return _page(rows, total, per_page, previous=more, following=False)
    rows, more = fetch(False)
    return _page(rows, total, per_page, previous=False, following=more, refused=refused)


def _page(rows, total, per_page, previous, following, refused=False):
    return KeysetPage(items=[row[0] for row in rows], total=total, per_page=per_page,
                      previous=cursor_of(rows[0][1], rows[0][0].id) if previous and rows else None,
                      next=cursor_of(rows[-1][1], rows[-1][0].id) if following and rows else None,
                      cursor_refused=refused)


def csv_stream(filters, batch=None):
    """The CSV text of the whole filtered list in its sort, yielded as rows come from a
    server-side cursor (`yield_per`): memory is one batch whatever the list's length.

    The cursor has a connection and transaction of its own, held while the body streams:
    the request's session is committed and handed back before the body is read, and a
    commit would end a server-side cursor on it."""
    column = SORTS[filters.sort]
    order = (column.asc(), Tenant.id.asc()) if filters.direction == "asc" else (column.desc(), Tenant.id.desc())
    query = (select(Tenant.id, Tenant.slug, Tenant.name, Tenant.status, Tenant.tier, Tenant.plan_code,
                    Tenant.created_at, Tenant.archived_at).where(*where(filters)).order_by(*order))
    # Tests hold every change in one connection's transaction: read it there.
    test_bind = current_app.extensions.get("portal.test_bind")
    return _streamed(test_bind if test_bind is not None else db.engine, query, batch or CSV_BATCH)


def _streamed(bind, query, batch):
    own = not isinstance(bind, Connection)
    with (bind.connect() if own else nullcontext(bind)) as conn, (conn.begin() if own else nullcontext()):
        result = conn.execute(query.execution_options(yield_per=batch))  # this statement's, not the connection's
        rows = ((str(r.id), r.slug, r.name, r.status, r.tier, r.plan_code, r.created_at.isoformat(),
                 r.archived_at.isoformat() if r.archived_at else "") for r in result)
        yield from csv_export.stream(CSV_COLUMNS, rows, batch=batch)
