from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import guard_staff_blueprint
from portal.lifecycle import upgrade
from portal.services import jobqueue
from portal.services.errors import Refused

bp = Blueprint("upgrades", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {"index": "tenants.view", "start": "tenants.upgrade"})


@bp.route("/upgrades")
def index():
    return render_template("upgrades/index.html", **upgrade.overview(), form=FlaskForm())


@bp.route("/upgrades", methods=["POST"])
def start():
    form = FlaskForm()
    if form.validate_on_submit():
        try:
            jobqueue.enqueue(upgrade.request_upgrade(current_user.email))
        except Refused as exc:
            flash(exc.message, "error")
        else:
            flash("Upgrade started (a job); this page shows its progress.", "success")
    return redirect(url_for("upgrades.index"))
