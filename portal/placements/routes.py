from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.auth.guards import guard_staff_blueprint
from portal.lifecycle import placements
from portal.placements.forms import PlacementForm
from portal.services.errors import Refused
from portal.view_helpers import show_refusal

bp = Blueprint("placements", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {"index": "placements.view", "register": "placements.manage"})




@bp.route("/placements")
def index():
    return render_template("placements/index.html", rows=placements.all_placements(), form=PlacementForm())


@bp.route("/placements", methods=["POST"])
def register():
    form = PlacementForm()
    if form.validate_on_submit():
        try:
            placement = placements.register(form.name.data, form.url_env.data, form.capacity.data, current_user)
        except Refused as exc:
            show_refusal(form, exc, "name")
        else:
            flash(f"Placement {placement.name} registered.", "success")
            return redirect(url_for("placements.index"))
    return render_template("placements/index.html", rows=placements.all_placements(), form=form), 400
