from flask import Blueprint, current_app, render_template, request

from portal.audit import services
from portal.auth.guards import guard_staff_blueprint
from portal.view_helpers import page_number

bp = Blueprint("audit", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {"index": "audit.view"})


@bp.route("/audit")
def index():
    filters = {k: request.args.get(k, "").strip()[:254] for k in ("tenant", "actor", "action")}
    page_no = page_number()
    page = services.search_events(filters["tenant"], filters["actor"], filters["action"], page=page_no,
                                  per_page=current_app.config["PAGE_SIZE"])
    return render_template("audit/index.html", page=page, filters=filters, actions=services.known_actions())
