from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import guard_tenant_blueprint
from portal.roles.services import role_choices
from portal.services.errors import Refused
from portal.users import services
from portal.users.forms import AddUserForm, RoleChoiceForm
from portal.view_helpers import keep_for_next_page, show_refusal, take_from_last_page

# With no mail server configured, mail waits in the outbox (portal/services/mail.py).
OUTBOX_NOTE = "No mail server is configured: the mail is in the portal's outbox, for the platform's staff to pass on."

bp = Blueprint("users", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"index": "users.view", "detail": "users.view", "create": "users.create",
                            "invited": "users.create", "change": "users.update", "remove": "users.delete"})
ACTIONS = {"disable": "disabled", "enable": "enabled", "reset": "new link sent", "resend": "invitation sent again",
           "role": "role changed"}


@bp.route("/users")
def index():
    return render_template("users/index.html", users=services.list_users(), state_of=services.state_of,
                           link_note=services.link_note, role_names=services.custom_role_names(), form=FlaskForm())


@bp.route("/users/new", methods=["GET", "POST"])
def create():
    form = AddUserForm()
    form.role.choices = role_choices()
    if form.validate_on_submit():
        try:
            user, message = services.add_user(form.email.data, form.name.data, form.role.data, current_user)
        except Refused as exc:
            show_refusal(form, exc, "email")
        else:
            # Redirect after the POST: a reload of what follows invites nobody again.
            keep_for_next_page("invited", {
                "email": user.email, "name": user.name, "role": dict(form.role.choices).get(user.role, user.role),
                "expires": user.set_password_expires_at.strftime("%Y-%m-%d %H:%M UTC"),
                "outbox": message.transport == "outbox"})
            return redirect(url_for("users.invited"))
    return render_template("users/new.html", form=form), (400 if form.errors else 200)


@bp.get("/users/invited")
def invited():
    """The page after an invitation, once (a reload goes to the users list)."""
    done = take_from_last_page("invited")
    if done is None:
        return redirect(url_for("users.index"))
    return render_template("users/invited.html", invited=done)


@bp.route("/users/<user_id>")
def detail(user_id):
    user = services.get_user(user_id)
    role_form = RoleChoiceForm(role=user.role)
    role_form.role.choices = role_choices()
    return render_template("users/detail.html", user=user, state=services.state_of(user),
                           role_names=services.custom_role_names(),
                           link_note=services.link_note, form=FlaskForm(), role_form=role_form)


@bp.post("/users/<user_id>/remove")
def remove(user_id):
    return _change(user_id, "remove")


@bp.post("/users/<user_id>/<action>")
def change(user_id, action):
    return _change(user_id, action)  # an action the service does not know is not found


def _change(user_id, action):
    form = RoleChoiceForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        email, message = services.change_user(user_id, action, current_user, role=form.role.data)
    except Refused as exc:
        flash(exc.message, "error")
        return redirect(url_for("users.detail", user_id=user_id))
    note = f" {OUTBOX_NOTE}" if message is not None and message.transport == "outbox" else ""
    flash(f"{email}: {ACTIONS.get(action, 'removed')}.{note}", "success")
    return redirect(url_for("users.index"))
