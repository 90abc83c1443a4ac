from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import guard_staff_blueprint
from portal.models import STAFF_ROLES
from portal.services import password_links
from portal.services.errors import Refused
from portal.staff import services
from portal.staff.forms import InviteForm, RoleForm
from portal.view_helpers import confirmed_action, show_refusal

# With no mail server configured, mail waits in the outbox (portal/services/mail.py).
OUTBOX_NOTE = "No mail server is configured: the invitation is in the outbox (Operations → Outbox), to be passed on."

bp = Blueprint("staff", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {"sessions": "account.self", "end_session": "account.self",
                           "end_everywhere": "account.self",
                           "people": "staff.manage", "invite": "staff.manage", "member": "staff.manage",
                           "change_role": "staff.manage", "disable": "staff.manage", "enable": "staff.manage",
                           "end_member_sessions": "staff.manage", "resend": "staff.manage"})


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


# -- managing staff (superadmins) ------------------------------------------------------------
def _grantable():
    """The roles the signed-in member may grant, as choices."""
    held = services.permissions_of(current_user.role)
    return [(role, role) for role in STAFF_ROLES if services.permissions_of(role) <= held]


@bp.route("/staff")
def people():
    return render_template("staff/people.html", rows=services.list_staff(), form=FlaskForm())


@bp.route("/staff/invite", methods=["GET", "POST"])
def invite():
    form = InviteForm()
    form.role.choices = _grantable()
    if form.validate_on_submit():
        try:
            done = services.invite(form.email.data, form.role.data, current_user, name=form.name.data)
        except Refused as exc:
            show_refusal(form, exc, "email")
        else:
            note = f" {OUTBOX_NOTE}" if done.message.transport == "outbox" else ""
            flash(f"Invitation sent to {done.member.email} ({done.member.role}): the link works once and expires "
                  f"on {password_links.invitation_expires(done.member):%Y-%m-%d %H:%M} UTC.{note}", "success")
            return redirect(url_for("staff.people"))
    return render_template("staff/invite.html", form=form), (400 if form.errors else 200)


def _member_page(member, role_form, status=200):
    role_form.role.choices = _grantable()
    return render_template("staff/member.html", member=member, state=services.state_of(member),
                           live=services.live_sessions(member), expires=password_links.invitation_expires(member),
                           role_form=role_form, form=FlaskForm()), status


@bp.route("/staff/<staff_id>")
def member(staff_id):
    found = services.get_member(staff_id)
    return _member_page(found, RoleForm(role=found.role))


@bp.post("/staff/<staff_id>/role")
def change_role(staff_id):
    found = services.get_member(staff_id)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.change_role(found.id, form.role.data, current_user)
    except Refused as exc:
        show_refusal(form, exc, "role")
        return _member_page(found, form, 400)
    flash(f"{found.email} is now a {found.role}.", "success")
    return redirect(url_for("staff.member", staff_id=found.id))


def _act(staff_id, action, done):
    found = services.get_member(staff_id)
    confirmed_action(lambda: action(found.id, current_user), done(found))
    return redirect(url_for("staff.member", staff_id=found.id))


@bp.post("/staff/<staff_id>/disable")
def disable(staff_id):
    return _act(staff_id, services.disable, lambda m: f"{m.email} is disabled: signed out everywhere, and may "
                                                      f"not sign in until enabled.")


@bp.post("/staff/<staff_id>/enable")
def enable(staff_id):
    return _act(staff_id, services.enable, lambda m: f"{m.email} is enabled: they may sign in again.")


@bp.post("/staff/<staff_id>/end-sessions")
def end_member_sessions(staff_id):
    return _act(staff_id, services.end_sessions, lambda m: f"Every session of {m.email} has ended.")


@bp.post("/staff/<staff_id>/resend")
def resend(staff_id):
    def done(sent):
        note = f" {OUTBOX_NOTE}" if sent.message.transport == "outbox" else ""
        return f"A new invitation went to {sent.member.email}; the earlier link no longer works.{note}"

    found = services.get_member(staff_id)
    confirmed_action(lambda: services.resend(found.id, current_user), done)
    return redirect(url_for("staff.member", staff_id=found.id))
