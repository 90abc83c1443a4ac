from flask import Blueprint

from portal.auth.guards import guard_tenant_blueprint

bp = Blueprint("domains", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {})
