"""What the API changes: orders and analytics events of the current tenant, with the
rules their input must meet (each refusal names the field, or the event's index)."""
import json
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from portal.services.errors import Refused
from portal.services.rows import tenant_row
from portal.tenancy.context import require_tenant
from portal.tenancy.data import Event, Order
from portal.tenancy.placement import tenant_transaction

MAX_EVENTS = 1000
ORDER_STATUSES = ("open", "paid", "shipped", "cancelled")
# When an event may have happened: at most EVENT_PAST back and EVENT_FUTURE ahead (clocks
# drift), with a UTC offset of at most 14 hours (the widest any place uses).
EVENT_PAST = timedelta(days=3653)
EVENT_FUTURE = timedelta(days=1)
MAX_OFFSET = timedelta(hours=14)
MAX_PROPERTIES_BYTES = 8192


def order_fields(data, partial):
    """The order fields of a JSON body; Refused on anything else or out of range."""
    if not isinstance(data, dict):
        raise Refused("body: send a JSON object.", "body")
    fields = {}
    if "customer" in data or not partial:
        customer = data.get("customer")
        if not isinstance(customer, str) or not customer.strip() or len(customer) > 120 \
                or not customer.isprintable():
            raise Refused("customer: a name of 1 to 120 printable characters.", "customer")
        fields["customer"] = customer.strip()
    if "amount_cents" in data or not partial:
        amount = data.get("amount_cents")
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= 10**9:
            raise Refused("amount_cents: a whole number from 0 to 1,000,000,000.", "amount_cents")
        fields["amount_cents"] = amount
    if "status" in data:
        if data["status"] not in ORDER_STATUSES:
            raise Refused(f"status: one of {', '.join(ORDER_STATUSES)}.", "status")
        fields["status"] = data["status"]
    unknown = set(data) - {"customer", "amount_cents", "status"}
    if unknown:
        raise Refused(f"Unknown fields: {', '.join(sorted(unknown))}.", sorted(unknown)[0])
    return fields


def create_order(data):
    fields = order_fields(data, partial=False)
    tenant = require_tenant()
    with tenant_transaction() as session:
        number = (session.execute(select(Order.number).order_by(Order.number.desc()).limit(1)).scalar() or 0) + 1
        order = Order(tenant_id=tenant.id, number=number, status="open", **fields)
        session.add(order)
        session.flush()
    return order


def update_order(order_id, data):
    """The current tenant's order, changed."""
    fields = order_fields(data, partial=True)
    with tenant_transaction() as session:
        order = tenant_row(session, Order, order_id)
        for name, value in fields.items():
            setattr(order, name, value)
        session.flush()
    return order


def delete_order(order_id):
    with tenant_transaction() as session:
        session.delete(tenant_row(session, Order, order_id))


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
