from flask import Blueprint

from portal.auth.guards import guard_staff_blueprint, guard_tenant_blueprint

bp = Blueprint("support", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {})
tenant_bp = Blueprint("impersonation", __name__, template_folder="templates")
guard_tenant_blueprint(tenant_bp, {})
