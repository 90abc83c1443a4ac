"""The audit log: the staff face (every event, filtered) and a tenant's own face (its
events, our staff's actions on it included). Both filter by a range of days (`from`,
`to`): a bad day is shown beside its field (400) and left out of the range."""
from datetime import datetime, timezone

from flask import Blueprint, Response, current_app, render_template, request, stream_with_context

from portal.audit import services
from portal.auth.guards import guard_staff_blueprint, guard_tenant_blueprint
from portal.tenancy.context import require_tenant
from portal.view_helpers import page_number

staff_bp = Blueprint("audit_staff", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(staff_bp, {"index": "audit.view", "detail": "audit.view", "export": "audit.view"})
bp = Blueprint("audit", __name__, template_folder="templates")
# The export is the plan's `audit_export` feature: without it the link is not shown
# (may_visit) and the address answers the feature's refusal.
guard_tenant_blueprint(bp, {"index": "audit.view", "export": ("audit.view", "audit_export")})


def _range_args():
    """The range as typed (kept in the form and the pager), its days and its errors."""
    typed = {name: request.args.get(name, "").strip()[:40] for name in services.RANGE_FIELDS}
    days, errors = services.read_range(typed)
    return typed, days, errors


def _csv(body, name):
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Response(stream_with_context(body), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"'})


def _refused_as_text(errors):
    """A bad filter of a CSV address: 400 naming the field, as text."""
    field = next(iter(errors))
    return Response(f"{field}: {errors[field]}\n", status=400, mimetype="text/plain")


@staff_bp.route("/audit")
def index():
    """Every event, filtered by tenant, actor, action and a range of days (a GET form: the
    URL is the filter); a bad value is said beside its field (400) and not applied."""
    typed, filters, errors = services.read_filters(request.args)
    range_typed, days, range_errors = _range_args()
    errors.update(range_errors)
    page = services.search_events(filters["tenant"], filters["actor"], filters["action"], page=page_number(),
                                  per_page=current_app.config["PAGE_SIZE"], days=days)
    args = {k: v for k, v in {**typed, **range_typed}.items() if v}
    return render_template("audit/index.html", page=page, filters=typed, actions=services.known_actions(),
                           range=range_typed, errors=errors, pager_args={**typed, **range_typed},
                           export_args=args), (400 if errors else 200)


@staff_bp.route("/audit/<event_id>")
def detail(event_id):
    """One event, every field of it."""
    event, slug = services.get_event(event_id)
    return render_template("audit/detail.html", event=event, slug=slug)


@staff_bp.route("/audit.csv")
def export():
    """The filtered log (the page's filters, every matching event) as CSV, streamed."""
    _, filters, errors = services.read_filters(request.args)
    _, days, range_errors = _range_args()
    errors.update(range_errors)
    if errors:
        return _refused_as_text(errors)
    return _csv(services.csv_stream(filters, days), "audit")


@bp.route("/audit", endpoint="index")
def tenant_index():
    """The tenant's own audit log: what its users and our staff did to it."""
    action = request.args.get("action", "").strip()[:64]
    typed, days, errors = _range_args()
    page = services.own_events(action, page_number(), current_app.config["PAGE_SIZE"], days=days)
    return render_template("audit/tenant.html", page=page, action=action, range=typed, errors=errors,
                           pager_args={"action": action, **typed},
                           export_args={k: v for k, v in {"action": action, **typed}.items() if v}), \
        (400 if errors else 200)


@bp.route("/audit/export.csv", endpoint="export")
def tenant_export():
    """The tenant's own audit log as CSV (plans with `audit_export`): its events only,
    whatever the URL says (the tenant is the request's; a `tenant=` is not read)."""
    action = request.args.get("action", "").strip()[:300]
    _, days, errors = _range_args()
    if action and not services.read_filters({"action": action})[1]["action"]:
        errors = {"action": "An action as the log names it, such as tenant_user.added.", **errors}
    if errors:
        return _refused_as_text(errors)
    return _csv(services.own_csv_stream(action, days), f"audit-{require_tenant().slug}")
