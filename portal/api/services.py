"""What the API changes: orders and analytics events of the current tenant, with the
rules their input must meet (each refusal names the field, or the event's index)."""
import uuid
from datetime import datetime, timezone

from sqlalchemy import select

from portal.services.errors import Refused
from portal.tenancy.context import require_tenant
from portal.tenancy.data import Event, Order
from portal.tenancy.placement import get_row, tenant_transaction

MAX_EVENTS = 1000
ORDER_STATUSES = ("open", "paid", "shipped", "cancelled")


def order_fields(data, partial):
    """The order fields of a JSON body; Refused on anything else or out of range."""
    if not isinstance(data, dict):
        raise Refused("Send a JSON object.")
    fields = {}
    if "customer" in data or not partial:
        customer = data.get("customer")
        if not isinstance(customer, str) or not customer.strip() or len(customer) > 120:
            raise Refused("customer: a name of 1 to 120 characters.")
        fields["customer"] = customer.strip()
    if "amount_cents" in data or not partial:
        amount = data.get("amount_cents")
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= 10**9:
            raise Refused("amount_cents: a whole number from 0 to 1,000,000,000.")
        fields["amount_cents"] = amount
    if "status" in data:
        if data["status"] not in ORDER_STATUSES:
            raise Refused(f"status: one of {', '.join(ORDER_STATUSES)}.")
        fields["status"] = data["status"]
    unknown = set(data) - {"customer", "amount_cents", "status"}
    if unknown:
        raise Refused(f"Unknown fields: {', '.join(sorted(unknown))}.")
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
    """The changed order, or None when the current tenant has no such order."""
    fields = order_fields(data, partial=True)
    with tenant_transaction() as session:
        order = get_row(session, Order, order_id)
        if order is not None:
            for name, value in fields.items():
                setattr(order, name, value)
            session.flush()
    return order


def delete_order(order_id):
    """True when the current tenant's order was deleted, False when it had none."""
    with tenant_transaction() as session:
        order = get_row(session, Order, order_id)
        if order is not None:
            session.delete(order)
    return order is not None


def ingest_events(data):
    """Store a batch of events, all or none; return how many."""
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
        raise Refused(f"events: a list of 1 to {MAX_EVENTS} events.")
    rows = [_event_row(n, item) for n, item in enumerate(events)]
    tenant = require_tenant()
    with tenant_transaction() as session:
        session.add_all(Event(tenant_id=tenant.id, id=uuid.uuid4(), **row) for row in rows)
    return len(rows)


def _event_row(n, item):
    if not isinstance(item, dict):
        raise Refused(f"events[{n}]: an object.")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 80:
        raise Refused(f"events[{n}].name: 1 to 80 characters.")
    properties = item.get("properties", {})
    if not isinstance(properties, dict):
        raise Refused(f"events[{n}].properties: an object.")
    occurred = item.get("occurred_at")
    try:
        when = datetime.fromisoformat(occurred) if occurred else datetime.now(timezone.utc)
    except (TypeError, ValueError):
        raise Refused(f"events[{n}].occurred_at: an ISO 8601 time.") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return {"name": name.strip(), "properties": properties, "occurred_at": when}
