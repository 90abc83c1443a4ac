from flask import Blueprint, current_app, render_template, request

from portal.auth.guards import guard_staff_blueprint, guard_tenant_blueprint
from portal.quotas import services
from portal.services import entitlements
from portal.services.metering import usage
from portal.tenancy.context import require_tenant
from portal.view_helpers import page_number

bp = Blueprint("quotas", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"usage_page": "plan.view"})

staff_bp = Blueprint("quotas_staff", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(staff_bp, {"pressure": "tenants.view", "top": "tenants.view"})


@bp.route("/usage")
def usage_page():
    tenant = require_tenant()
    granted = entitlements.current()
    return render_template("quotas/usage.html", rows=usage(tenant, granted), plan=granted)


@staff_bp.route("/quotas")
def pressure():
    """Every served tenant's use of its limits, in pages, sorted by any column (?sort=, ?dir=)."""
    sort = services.Sort.from_args(request.args, services.PRESSURE_SORTS, "pressure")
    page, taken_at, readable = services.pressure(sort, page_number(), current_app.config["PAGE_SIZE"])
    return render_template("quotas/pressure.html", page=page, rows=page.items, sort=sort, readable=readable,
                           taken_at=taken_at, sorts=services.PRESSURE_SORTS)


@staff_bp.route("/top")
def top():
    """Every served tenant's consumption, in pages, sorted by any column (?sort=, ?dir=)."""
    sort = services.Sort.from_args(request.args, services.TOP_SORTS, "requests")
    page, taken_at, readable = services.top_consumers(sort, page_number(), current_app.config["PAGE_SIZE"])
    return render_template("quotas/top.html", page=page, rows=page.items, sort=sort, readable=readable,
                           taken_at=taken_at, sorts=services.TOP_SORTS)
