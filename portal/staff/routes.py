from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import guard_staff_blueprint
from portal.staff import services

bp = Blueprint("staff", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {"sessions": "account.self", "end_session": "account.self",
                           "end_everywhere": "account.self"})


@bp.route("/account/sessions")
def sessions():
    return render_template("staff/sessions.html", rows=services.own_sessions(current_user),
                           current=services.current_session(), form=FlaskForm())


@bp.post("/account/sessions/end")
def end_session():
    if not FlaskForm().validate_on_submit():
        abort(400)
    services.end_own_session(current_user, request.form.get("session", ""))
    flash("That session has ended.", "success")
    return redirect(url_for("staff.sessions"))


@bp.post("/account/sessions/end-all")
def end_everywhere():
    if not FlaskForm().validate_on_submit():
        abort(400)
    services.sign_out_everywhere(current_user)
    flash("You are signed out everywhere, here too.", "info")
    return redirect(url_for("auth.staff_login"))
