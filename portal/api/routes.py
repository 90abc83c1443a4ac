"""The machine API, /api/v1/: a tenant-bound token (Authorization: Bearer tp_...) with
scopes. Errors are JSON: {"error": {"code": <status>, "message": ...}}."""
from flask import Blueprint, g, jsonify, request

from portal.analytics import events as analytics_events
from portal.api.body import json_body
from portal.errors import refusal
from portal.orders import services as order_rules
from portal.services.errors import Refused
from portal.tenancy.context import get_current_tenant, require_tenant
from portal.tokens import services as tokens
from portal.users.services import list_users

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# endpoint -> the scope it needs (None: any valid token); "status" needs no token.
SCOPES = {"status": "public", "me": None, "users": "users:read", "orders": "orders:read",
          "order": "orders:read", "create_order": "orders:write", "update_order": "orders:write",
          "delete_order": "orders:write", "ingest_events": "events:write"}


def error(status, message, field=None):
    """The API's refusal: JSON {"error": {"code", "message", "field"?}} (portal/errors.py
    answers the HTTP errors — 404, 405 — of /api/ paths the same way)."""
    return refusal(status, "", message, **({"field": field} if field else {}))


@bp.before_request
def _authenticate():
    """One guard for every API route: a live token of this tenant, with the scope, made
    by a user who is still active and whose role still allows that scope."""
    need = SCOPES.get(request.endpoint.rsplit(".", 1)[-1], "missing")
    if need == "public":
        return None
    if need == "missing" or get_current_tenant() is None:
        return error(404, "Not found.")
    header = request.headers.get("Authorization", "")
    try:
        grant = tokens.authenticate(header[7:].strip() if header.startswith("Bearer ") else "")
    except Refused as exc:  # the token's maker was disabled or removed
        return error(401, exc.message)
    if grant is None:
        return error(401, "A valid API token is needed: Authorization: Bearer <token>.")
    if need is not None and need not in grant.token.scopes:
        return error(403, f"This token lacks the scope {need}.")
    if need is not None and need not in grant.scopes:
        return error(403, f"This token's maker's role no longer allows {need}: "
                          "a token may do only what its maker may.")
    g.api_token, g.api_scopes = grant.token, grant.scopes
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
                                                        "effective_scopes": list(g.api_scopes),
                                                        "expires_at": _iso(token.expires_at)})


@bp.route("/users")
def users():
    return jsonify(users=[{"id": str(u.id), "email": u.email, "name": u.name, "role": u.role,
                           "active": u.is_active} for u in list_users()])


def _order_json(order):
    return {"id": str(order.id), "number": order.number, "customer": order.customer,
            "amount_cents": order.amount_cents, "status": order.status, "created_at": _iso(order.created_at)}


def _iso(value):
    return value.isoformat() if value else None


@bp.route("/orders")
def orders():
    return jsonify(orders=[_order_json(o) for o in order_rules.latest_orders(limit=200)])


@bp.route("/orders/<order_id>")
def order(order_id):
    return jsonify(order=_order_json(order_rules.get_order(order_id)))


@bp.route("/orders", methods=["POST"])
def create_order():
    try:
        created = order_rules.create_order(json_body())
    except Refused as exc:
        return error(400, exc.message, exc.field)
    return jsonify(order=_order_json(created)), 201


@bp.route("/orders/<order_id>", methods=["PATCH"])
def update_order(order_id):
    try:
        changed = order_rules.update_order(order_id, json_body())
    except Refused as exc:
        return error(400, exc.message, exc.field)
    return jsonify(order=_order_json(changed))


@bp.route("/orders/<order_id>", methods=["DELETE"])
def delete_order(order_id):
    order_rules.delete_order(order_id)
    return "", 204


@bp.route("/events", methods=["POST"])
def ingest_events():
    """A batch of analytics events: {"events": [{"name", "user_id"?, "properties"?, "occurred_at"?}]}.
    All or nothing: one bad event refuses the batch, with its index."""
    try:
        accepted = analytics_events.ingest_batch(json_body())
    except Refused as exc:
        return error(400, exc.message, exc.field)
    return jsonify(accepted=accepted), 202
