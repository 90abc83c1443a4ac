import json
import re
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Tenant
from portal.services import csv_export
from portal.services.errors import NotFound
from portal.services.pagination import paginate
from portal.tenancy.context import require_tenant

_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
RANGE_FIELDS = {"from": "The first day", "to": "The last day"}


def read_range(args):
    """The date range asked for by `args` (the URL's query: `from` and `to`, days as
    YYYY-MM-DD, UTC, both included): ({name: day}, {name: message}). A bad day is left
    out of the range and gets a message for its field; a `from` after the `to` is refused
    (as the `to`'s error) and neither is used."""
    days, errors = {}, {}
    for name, label in RANGE_FIELDS.items():
        raw = (args.get(name) or "").strip()
        if not raw:
            continue
        try:
            if not _DAY.match(raw):
                raise ValueError(raw)
            days[name] = date.fromisoformat(raw)
        except ValueError:
            errors[name] = f"{label}: enter a day as YYYY-MM-DD, such as 2026-11-30."
    if "from" in days and "to" in days and days["from"] > days["to"]:
        errors["to"] = "The last day comes on or after the first day."
        days = {}
    return days, errors


def _in_range(query, days):
    if days.get("from"):
        query = query.where(AuditEvent.occurred_at >= datetime.combine(days["from"], time.min, tzinfo=timezone.utc))
    if days.get("to") and days["to"] < date.max:
        following = datetime.combine(days["to"] + timedelta(days=1), time.min, tzinfo=timezone.utc)
        query = query.where(AuditEvent.occurred_at < following)
    return query


FILTER_FIELDS = ("tenant", "actor", "action")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")
_ACTION = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}\Z")
ORDER = (AuditEvent.occurred_at.desc(), AuditEvent.id.desc())


def read_filters(args):
    """The staff page's filters (`tenant` slug, `actor` label, `action`) from `args`, as
    typed (kept in the form) and as applied, with a message per bad one:
    (typed, applied, {name: message}). A bad value is not applied."""
    typed = {name: (args.get(name) or "").strip()[:300] for name in FILTER_FIELDS}
    applied, errors = {name: "" for name in FILTER_FIELDS}, {}
    tenant = typed["tenant"].lower()
    if tenant and not _SLUG.match(tenant):
        errors["tenant"] = "A tenant's slug: lower-case letters, digits and hyphens, up to 63."
    else:
        applied["tenant"] = tenant
    actor = typed["actor"]
    if actor and (len(actor) > 254 or not actor.isprintable()):
        errors["actor"] = "Who acted: an email address (or “system”), up to 254 characters."
    else:
        applied["actor"] = actor.lower()  # labels are stored lower case
    action = typed["action"]
    if action and not _ACTION.match(action):
        errors["action"] = "An action as the log names it, such as tenant.suspended."
    else:
        applied["action"] = action
    return typed, applied, errors


def _events(filters, days):
    """The query of events (with their tenant's slug) matching the applied filters."""
    query = select(AuditEvent, Tenant.slug).outerjoin(Tenant, Tenant.id == AuditEvent.tenant_id)
    if filters.get("tenant"):
        query = query.where(Tenant.slug == filters["tenant"])
    if filters.get("actor"):
        query = query.where(AuditEvent.actor_label == filters["actor"].lower())
    if filters.get("action"):
        query = query.where(AuditEvent.action == filters["action"])
    return _in_range(query, days or {})


def search_events(tenant_slug="", actor="", action="", page=1, per_page=50, days=None):
    """A page of audit events, newest first, within `days` (read_range's). Unknown
    tenant slug: no events."""
    query = _events({"tenant": tenant_slug, "actor": actor, "action": action}, days)
    return paginate(query, ORDER, page, per_page, scalars=False)


def get_event(raw_id):
    """One event (and its tenant's slug) by an id from a URL; NotFound for anything else."""
    text = str(raw_id)
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise NotFound(raw_id)
    row = db.session.execute(select(AuditEvent, Tenant.slug).outerjoin(Tenant, Tenant.id == AuditEvent.tenant_id)
                             .where(AuditEvent.id == int(text))).first()
    if row is None:
        raise NotFound(raw_id)
    return row


CSV_COLUMNS = ["id", "occurred_at", "actor_kind", "actor_id", "actor", "tenant", "action", "target", "reason",
               "details", "ip"]
TENANT_CSV_COLUMNS = ["id", "occurred_at", "actor", "by_our_staff", "action", "target", "reason", "details"]
CSV_BATCH = 500


def _details(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if value else ""


def csv_stream(filters, days):
    """The staff CSV of the filtered log (every matching event, the page's order), read
    through a server-side cursor and yielded a batch at a time."""
    query = _events(filters, days).order_by(*ORDER).execution_options(yield_per=CSV_BATCH)
    rows = ((e.id, e.occurred_at.isoformat(), e.actor_kind, e.actor_id or "", e.actor_label, slug or "",
             e.action, e.target or "", e.reason or "", _details(e.details), e.ip or "")
            for e, slug in db.session.execute(query))
    return csv_export.stream(CSV_COLUMNS, rows, batch=CSV_BATCH)


def _own(action, days):
    """The current tenant's own events: the tenant is the one bound to the request, never
    a value of the URL."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == require_tenant().id)
    if action:
        query = query.where(AuditEvent.action == action)
    return _in_range(query, days or {})


def own_csv_stream(action, days):
    """The tenant's own audit log as CSV, as its page shows it: our staff's details stay
    ours (the page shows only its own users' details)."""
    query = _own(action, days).order_by(*ORDER).execution_options(yield_per=CSV_BATCH)
    rows = ((e.id, e.occurred_at.isoformat(), e.actor_label, "yes" if e.actor_kind == "staff" else "no",
             e.action, e.target or "", e.reason or "", _details(e.details) if e.actor_kind == "tenant_user" else "")
            for e in db.session.execute(query).scalars())
    return csv_export.stream(TENANT_CSV_COLUMNS, rows, batch=CSV_BATCH)


def recent_for_tenant(tenant_id, limit=10):
    return db.session.execute(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)
    ).scalars().all()


def known_actions():
    return db.session.execute(select(AuditEvent.action).distinct().order_by(AuditEvent.action)).scalars().all()


def own_events(action="", page=1, per_page=50, days=None):
    """The current tenant's own audit events (staff actions on it included), newest
    first, within `days` (read_range's)."""
    return paginate(_own(action, days), ORDER, page, per_page)
