"""The machine API, /api/v1/: a tenant-bound token (Authorization: Bearer tp_...) with
scopes. Errors are JSON: {"error": {"code": <status>, "message": ...}}."""
import uuid
from datetime import datetime, timezone

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select

from portal.services.errors import Refused
from portal.tenancy.context import get_current_tenant, require_tenant
from portal.tenancy.data import Event, Order, TenantUser
from portal.tenancy.placement import get_row, tenant_session, tenant_transaction
from portal.tokens import services as tokens

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_EVENTS = 1000
ORDER_STATUSES = ("open", "paid", "shipped", "cancelled")
# endpoint -> the scope it needs (None: any valid token); "status" needs no token.
SCOPES = {"status": "public", "me": None, "users": "users:read", "orders": "orders:read",
          "order": "orders:read", "create_order": "orders:write", "update_order": "orders:write",
          "delete_order": "orders:write", "ingest_events": "events:write"}


def error(status, message):
    response = jsonify(error={"code": status, "message": message})
    response.status_code = status
    return response


@bp.errorhandler(404)
def _not_found(_):
    return error(404, "Not found.")


@bp.errorhandler(405)
def _not_allowed(_):
    return error(405, "That method is not allowed here.")


@bp.before_request
def _authenticate():
    """One guard for every API route: a live token of this tenant, with the scope."""
    need = SCOPES.get(request.endpoint.rsplit(".", 1)[-1], "missing")
    if need == "public":
        return None
    if need == "missing" or get_current_tenant() is None:
        return error(404, "Not found.")
    header = request.headers.get("Authorization", "")
    token = tokens.authenticate(header[7:].strip() if header.startswith("Bearer ") else "")
    if token is None:
        return error(401, "A valid API token is needed: Authorization: Bearer <token>.")
    if need is not None and need not in token.scopes:
        return error(403, f"This token lacks the scope {need}.")
    g.api_token = token
    return None


@bp.route("/status")
def status():
    """Resolved tenant (by host, path, X-Tenant-ID or token) and its status."""
    tenant = get_current_tenant()
    if tenant is None:
        return error(404, "Name a tenant: path, host, X-Tenant-ID or a token.")
    return jsonify(tenant=tenant.slug, status=tenant.status)


@bp.route("/me")
def me():
    token = g.api_token
    return jsonify(tenant=require_tenant().slug, token={"name": token.name, "scopes": token.scopes,
                                                        "expires_at": _iso(token.expires_at)})


@bp.route("/users")
def users():
    with tenant_session() as session:
        rows = session.execute(select(TenantUser).order_by(TenantUser.email)).scalars().all()
    return jsonify(users=[{"id": str(u.id), "email": u.email, "name": u.name, "role": u.role,
                           "active": u.is_active} for u in rows])


def _order_json(order):
    return {"id": str(order.id), "number": order.number, "customer": order.customer,
            "amount_cents": order.amount_cents, "status": order.status, "created_at": _iso(order.created_at)}


def _iso(value):
    return value.isoformat() if value else None


@bp.route("/orders")
def orders():
    with tenant_session() as session:
        rows = session.execute(select(Order).order_by(Order.created_at.desc()).limit(200)).scalars().all()
    return jsonify(orders=[_order_json(o) for o in rows])


@bp.route("/orders/<order_id>")
def order(order_id):
    with tenant_session() as session:
        found = get_row(session, Order, order_id)
    return jsonify(order=_order_json(found)) if found else error(404, "Not found.")


def _body():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Refused("Send a JSON object.")
    return data


def _order_fields(data, partial):
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


@bp.route("/orders", methods=["POST"])
def create_order():
    try:
        fields = _order_fields(_body(), partial=False)
    except Refused as exc:
        return error(400, exc.message)
    tenant = require_tenant()
    with tenant_transaction() as session:
        number = (session.execute(select(Order.number).order_by(Order.number.desc()).limit(1)).scalar() or 0) + 1
        created = Order(tenant_id=tenant.id, number=number, status="open", **fields)
        session.add(created)
        session.flush()
        body = _order_json(created)
    return jsonify(order=body), 201


@bp.route("/orders/<order_id>", methods=["PATCH"])
def update_order(order_id):
    try:
        fields = _order_fields(_body(), partial=True)
    except Refused as exc:
        return error(400, exc.message)
    with tenant_transaction() as session:
        found = get_row(session, Order, order_id)
        if found is None:
            return error(404, "Not found.")
        for name, value in fields.items():
            setattr(found, name, value)
        session.flush()
        body = _order_json(found)
    return jsonify(order=body)


@bp.route("/orders/<order_id>", methods=["DELETE"])
def delete_order(order_id):
    with tenant_transaction() as session:
        found = get_row(session, Order, order_id)
        if found is None:
            return error(404, "Not found.")
        session.delete(found)
    return "", 204


@bp.route("/events", methods=["POST"])
def ingest_events():
    """A batch of analytics events: {"events": [{"name", "properties"?, "occurred_at"?}]}.
    All or nothing: one bad event refuses the batch, with its index."""
    try:
        events = _body().get("events")
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
            raise Refused(f"events: a list of 1 to {MAX_EVENTS} events.")
        rows = [_event_row(n, item) for n, item in enumerate(events)]
    except Refused as exc:
        return error(400, exc.message)
    tenant = require_tenant()
    with tenant_transaction() as session:
        session.add_all(Event(tenant_id=tenant.id, id=uuid.uuid4(), **row) for row in rows)
    return jsonify(accepted=len(rows)), 202


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
