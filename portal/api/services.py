"""Analytics events sent through the API, with the rules their input must meet (each
refusal names the field, or the event's index). Orders: portal/orders/services.py."""
import json
import uuid
from datetime import datetime, timedelta, timezone

from portal.services.errors import Refused
from portal.tenancy.context import require_tenant
from portal.tenancy.data import Event
from portal.tenancy.placement import tenant_transaction

MAX_EVENTS = 1000
# When an event may have happened: at most EVENT_PAST back and EVENT_FUTURE ahead (clocks
# drift), with a UTC offset of at most 14 hours (the widest any place uses).
EVENT_PAST = timedelta(days=3653)
EVENT_FUTURE = timedelta(days=1)
MAX_OFFSET = timedelta(hours=14)
MAX_PROPERTIES_BYTES = 8192


def ingest_events(data):
    """Store a batch of events, all or none; return how many."""
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
        raise Refused(f"events: a list of 1 to {MAX_EVENTS} events.", "events")
    rows = [_event_row(n, item) for n, item in enumerate(events)]
    tenant = require_tenant()
    with tenant_transaction() as session:
        session.add_all(Event(tenant_id=tenant.id, id=uuid.uuid4(), **row) for row in rows)
    return len(rows)


def _event_row(n, item):
    at = f"events[{n}]"
    if not isinstance(item, dict):
        raise Refused(f"{at}: an object.", at)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 80 or not name.isprintable():
        raise Refused(f"{at}.name: 1 to 80 printable characters.", f"{at}.name")
    properties = item.get("properties", {})
    if not isinstance(properties, dict):
        raise Refused(f"{at}.properties: an object.", f"{at}.properties")
    if len(json.dumps(properties)) > MAX_PROPERTIES_BYTES:
        raise Refused(f"{at}.properties: at most {MAX_PROPERTIES_BYTES} bytes as JSON.", f"{at}.properties")
    return {"name": name.strip(), "properties": properties, "occurred_at": _occurred_at(item.get("occurred_at"), at)}


def _occurred_at(raw, at):
    """The event's time: now when not given, else an ISO 8601 time (UTC when it has no
    offset) within the accepted window."""
    now = datetime.now(timezone.utc)
    if raw is None:
        return now
    field = f"{at}.occurred_at"
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
    if not now - EVENT_PAST <= when <= now + EVENT_FUTURE:
        raise Refused(f"{field}: from 10 years ago to 1 day ahead.", field)
    return when
