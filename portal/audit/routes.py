"""The audit log: the staff face (every event, filtered) and a tenant's own face (its
events, our staff's actions on it included). Both filter by a range of days (`from`,
`to`): a bad day is shown beside its field (400) and left out of the range."""
from flask import Blueprint, current_app, render_template, request

from portal.audit import services
from portal.auth.guards import guard_staff_blueprint, guard_tenant_blueprint
from portal.view_helpers import page_number

staff_bp = Blueprint("audit_staff", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(staff_bp, {"index": "audit.view"})
bp = Blueprint("audit", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"index": "audit.view"})


def _range_args():
    """The range as typed (kept in the form and the pager), its days and its errors."""
    typed = {name: request.args.get(name, "").strip()[:40] for name in services.RANGE_FIELDS}
    days, errors = services.read_range(typed)
    return typed, days, errors


@staff_bp.route("/audit")
def index():
    filters = {k: request.args.get(k, "").strip()[:254] for k in ("tenant", "actor", "action")}
    typed, days, errors = _range_args()
    page = services.search_events(filters["tenant"], filters["actor"], filters["action"], page=page_number(),
                                  per_page=current_app.config["PAGE_SIZE"], days=days)
    return render_template("audit/index.html", page=page, filters=filters, actions=services.known_actions(),
                           range=typed, errors=errors, pager_args={**filters, **typed}), (400 if errors else 200)


@bp.route("/audit", endpoint="index")
def tenant_index():
    """The tenant's own audit log: what its users and our staff did to it."""
    action = request.args.get("action", "").strip()[:64]
    typed, days, errors = _range_args()
    page = services.own_events(action, page_number(), current_app.config["PAGE_SIZE"], days=days)
    return render_template("audit/tenant.html", page=page, action=action, range=typed, errors=errors,
                           pager_args={"action": action, **typed}), (400 if errors else 200)
