import uuid

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal.auth.guards import guard_staff_blueprint
from portal.lifecycle import moves, placements
from portal.models import Placement
from portal.placements.forms import DrainForm, PlacementForm
from portal.services import jobqueue
from portal.services.errors import Refused
from portal.services.rows import registry_row
from portal.view_helpers import show_refusal

bp = Blueprint("placements", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {"index": "placements.view", "register": "placements.manage",
                           "drain": "placements.manage"})


def _page(form=None, drain_form=None, status=200):
    rows = placements.all_placements()
    drain_form = drain_form or DrainForm()
    drain_form.to.choices = [SelectChoice(str(p.id), p.name) for p, _ in rows]
    return render_template("placements/index.html", rows=rows, sizes=placements.sizes([p for p, _ in rows]),
                           form=form or PlacementForm(), drain_form=drain_form,
                           drains=jobqueue.recent_of_kind("drain", 3)), status


@bp.route("/placements")
def index():
    return _page()


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
    return _page(form=form, status=400)


@bp.route("/placements/<placement_id>/drain", methods=["POST"])
def drain(placement_id):
    placement = registry_row(Placement, placement_id)
    form = DrainForm()
    form.to.choices = [SelectChoice(str(p.id), p.name) for p, _ in placements.all_placements()]
    if form.validate_on_submit():
        try:
            job = moves.request_drain(placement, registry_row(Placement, uuid.UUID(form.to.data)), current_user)
        except Refused as exc:
            show_refusal(form, exc, "to")
        else:
            jobqueue.enqueue(job)
            flash(f"Draining {placement.name}: its tenants move one after another, each online.", "success")
            return redirect(url_for("placements.index"))
    return _page(drain_form=form, status=400)
