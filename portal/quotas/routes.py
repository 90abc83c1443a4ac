from flask import Blueprint, render_template

from portal.auth.guards import guard_staff_blueprint, guard_tenant_blueprint
from portal.quotas import services
from portal.services import entitlements
from portal.services.metering import usage
from portal.tenancy.context import require_tenant

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
    return render_template("quotas/pressure.html", rows=services.pressure())


@staff_bp.route("/top")
def top():
    return render_template("quotas/top.html", **services.top_consumers())
