import re

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user

from portal.auth.guards import guard_staff_blueprint
from portal.outbox import services
from portal.view_helpers import page_number

bp = Blueprint("outbox", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {"index": "outbox.view", "detail": "outbox.read"})


@bp.route("/outbox")
def index():
    recipient = request.args.get("to", "").strip()[:254]
    page_no = page_number()
    page = services.search_messages(recipient, page=page_no, per_page=current_app.config["PAGE_SIZE"])
    return render_template("outbox/index.html", page=page, filters={"to": recipient})


@bp.route("/outbox/<message_id>")
def detail(message_id):
    message, slug = services.read_message(message_id, current_user)
    links = re.findall(r"https?://\S+", message.body)  # to pass on: each with a copy button
    return render_template("outbox/detail.html", message=message, slug=slug, links=links)
