import re
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Tenant
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


def search_events(tenant_slug="", actor="", action="", page=1, per_page=50, days=None):
    """A page of audit events, newest first, within `days` (read_range's). Unknown
    tenant slug: no events."""
    query = select(AuditEvent, Tenant.slug).outerjoin(Tenant, Tenant.id == AuditEvent.tenant_id)
    if tenant_slug:
        query = query.where(Tenant.slug == tenant_slug)
    if actor:
        query = query.where(AuditEvent.actor_label == actor.lower())  # labels are stored lower case
    if action:
        query = query.where(AuditEvent.action == action)
    query = _in_range(query, days or {})
    order = (AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    return paginate(query, order, page, per_page, scalars=False)


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
    query = select(AuditEvent).where(AuditEvent.tenant_id == require_tenant().id)
    if action:
        query = query.where(AuditEvent.action == action)
    query = _in_range(query, days or {})
    return paginate(query, (AuditEvent.occurred_at.desc(), AuditEvent.id.desc()), page, per_page)
