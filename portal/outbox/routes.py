from flask import Blueprint

from portal.auth.guards import guard_staff_blueprint

bp = Blueprint("outbox", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {})
