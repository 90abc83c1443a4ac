from datetime import datetime, timedelta, timezone

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from portal.auth import services
from portal.auth.forms import SetPasswordForm, SignInForm
from portal.auth.guards import safe_next
from portal.extensions import db
from portal.services import password_links, sessions, tenant_settings
from portal.services.errors import Refused
from portal.services.throttle import Throttled
from portal.staff import services as staff
from portal.tenancy.context import get_current_tenant, require_tenant
from portal.view_helpers import show_refusal

bp = Blueprint("auth", __name__, template_folder="templates")


@bp.before_request
def _realm_guard():
    """Staff pages only where no tenant is bound; tenant pages only where one is."""
    staff_page = request.endpoint.startswith("auth.staff_")
    if staff_page == (get_current_tenant() is not None):
        abort(404)  # answered by the one handler (portal/errors.py): a page, or JSON for the API
    return None


def sign_in_tenant_user(tenant, user):
    """Sign in, in the tenant's current session epoch (a later epoch ends the session),
    for as long as the tenant's settings say a sign-in lasts."""
    minutes = int(tenant_settings.current()["session_minutes"])
    sessions.start_tenant(tenant, services.principal_of(tenant, user),
                          datetime.now(timezone.utc) + timedelta(minutes=minutes))


@bp.route("/admin/login", methods=["GET", "POST"])
def staff_login():
    form = SignInForm(next=request.args.get("next", ""))
    error = None
    if form.validate_on_submit():
        try:
            user = services.authenticate_staff(form.email.data, form.password.data, request.remote_addr)
        except (services.SignInError, Throttled) as exc:
            error = str(exc)
        else:
            sessions.start_staff(user)
            return redirect(safe_next(form.next.data, url_for("tenants.index")))
    return render_template("auth/login.html", form=form, error=error, realm="Staff console"), (
        401 if error else 200
    )


@bp.route("/admin/logout", methods=["POST"])
def staff_logout():
    sessions.end_current()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.staff_login"))


@bp.route("/login", methods=["GET", "POST"])
def tenant_login():
    tenant = require_tenant()
    form = SignInForm(next=request.args.get("next", ""))
    error = None
    if form.validate_on_submit():
        try:
            user = services.authenticate_tenant_user(
                tenant, form.email.data, form.password.data, request.remote_addr
            )
        except (services.SignInError, Throttled) as exc:
            error = str(exc)
        else:
            sign_in_tenant_user(tenant, user)
            return redirect(safe_next(form.next.data, url_for("selfservice.home")))
    return render_template("auth/login.html", form=form, error=error, realm=tenant.name), (
        401 if error else 200
    )


@bp.route("/logout", methods=["POST"])
def tenant_logout():
    sessions.end_current()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.tenant_login"))


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def tenant_set_password(token):
    tenant = require_tenant()
    user, state = services.link_state(tenant, token)
    if state != password_links.OPEN:
        return _link_closed(tenant, state, user)
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            user = services.set_password_with_token(tenant, token, form.password.data)
        except services.LinkClosed as exc:  # used or expired since the page was shown
            return _link_closed(tenant, exc.state, exc.user)
        except services.PasswordRejected as exc:
            form.password.errors.append(str(exc))
        else:
            sign_in_tenant_user(tenant, user)
            flash("Your password is set. Welcome!", "success")
            return redirect(url_for("selfservice.home"))
    return render_template("auth/set_password.html", form=form, email=user.email), (400 if form.errors else 200)


def _link_closed(tenant, state, user):
    """Why the link does not work: unknown (404), used or expired (410). Nothing about
    the user is shown: whoever holds the link may not be them."""
    if state is None:
        return render_template("auth/link_closed.html", title="Link not valid",
                               message="This link is not valid."), 404
    if state == password_links.USED:
        return render_template("auth/link_closed.html", title="Link already used", sign_in=True,
                               message=f"This link has already been used. Sign in, or ask an admin of "
                                       f"{tenant.name} for a new one."), 410
    expired = user.set_password_expires_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return render_template("auth/link_closed.html", title="Link expired",
                           message=f"This invitation expired on {expired}. Ask an admin of {tenant.name} "
                                   f"for a new one."), 410


@bp.route("/admin/set-password/<invitation>", methods=["GET", "POST"])
def staff_set_password(invitation):
    """An invited staff member chooses their password (portal/services/password_links.py),
    by the rules of a tenant user's, and is signed in to the console."""
    member, state = password_links.staff_for_token(db.session, invitation)
    if state != password_links.OPEN:
        return _staff_link_closed(state, member)
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            member = staff.set_password(invitation, form.password.data)
        except staff.LinkClosed as exc:  # used or expired since the page was shown
            return _staff_link_closed(exc.state, exc.member)
        except Refused as exc:
            show_refusal(form, exc, "password")
        else:
            sessions.start_staff(member)
            flash("Your password is set. Welcome to the staff console!", "success")
            return redirect(url_for("tenants.index"))
    return render_template("auth/set_password.html", form=form, email=member.email,
                           layout="layouts/staff.html"), (400 if form.errors else 200)


def _staff_link_closed(state, member):
    """Why the link does not work, as a tenant user's: unknown or its holder disabled
    (404), used or expired (410). Nothing about the member is shown."""
    if state is None:
        return render_template("staff/link_closed.html", title="Link not valid",
                               message="This link is not valid. Sign in, or ask a superadmin for a new "
                                       "invitation."), 404
    if state == password_links.USED:
        return render_template("staff/link_closed.html", title="Link already used",
                               message="This link has already been used. Sign in, or ask a superadmin for a "
                                       "new invitation."), 410
    expired = member.set_password_expires_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return render_template("staff/link_closed.html", title="Link expired",
                           message=f"This invitation expired on {expired}. Ask a superadmin for a new one."), 410
