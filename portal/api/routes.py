from flask import Blueprint, jsonify

from portal.tenancy.context import get_current_tenant

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.errorhandler(404)
def _not_found(_):
    return jsonify(error={"code": 404, "message": "Not found."}), 404


@bp.route("/status")
def status():
    """Resolved tenant (by host, path or X-Tenant-ID) and its status; 404 with no tenant."""
    tenant = get_current_tenant()
    if tenant is None:
        return jsonify(error={"code": 404, "message": "Name a tenant: path, host or X-Tenant-ID."}), 404
    return jsonify(tenant=tenant.slug, status=tenant.status)
