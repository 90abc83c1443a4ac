from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import guard_tenant_blueprint
from portal.services.errors import Refused
from portal.users import services
from portal.users.forms import AddUserForm

bp = Blueprint("users", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"index": "member", "detail": "member", "create": "admin", "change": "admin"})
ACTIONS = {"disable": "disabled", "enable": "enabled", "remove": "removed", "reset": "sent a new link"}


@bp.route("/users")
def index():
    return render_template("users/index.html", users=services.list_users())


@bp.route("/users/new", methods=["GET", "POST"])
def create():
    form = AddUserForm()
    if form.validate_on_submit():
        try:
            user, token = services.add_user(form.email.data, form.name.data, form.role.data, current_user)
        except Refused as exc:
            getattr(form, exc.field or "email").errors.append(exc.message)
        else:
            flash(f"{user.email} added.", "success")
            link = url_for("auth.tenant_set_password", token=token, _external=True)
            return render_template("users/added.html", user=user, link=link)
    return render_template("users/new.html", form=form), (400 if form.errors else 200)


@bp.route("/users/<user_id>")
def detail(user_id):
    user = services.get_user(user_id)
    if user is None:
        abort(404)
    return render_template("users/detail.html", user=user, form=FlaskForm(), actions=ACTIONS)


@bp.route("/users/<user_id>/<action>", methods=["POST"])
def change(user_id, action):
    if action not in ACTIONS:
        abort(404)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        email, token = services.change_user(user_id, action, current_user)
    except LookupError:
        abort(404)
    except Refused as exc:
        flash(exc.message, "error")
        return redirect(url_for("users.detail", user_id=user_id))
    if token:
        link = url_for("auth.tenant_set_password", token=token, _external=True)
        return render_template("users/added.html", user={"email": email}, link=link, reset=True)
    flash(f"{email}: {ACTIONS[action]}.", "success")
    return redirect(url_for("users.index"))
