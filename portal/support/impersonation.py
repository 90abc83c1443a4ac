"""The impersonation step of the request pipeline (portal/pipeline.py): while
impersonating, in one place (not per route):

- a lapsed impersonation (ended, expired, revoked) is closed and its session cleared;
- writes are refused ("read-only impersonation") unless write access was granted;
- every request — refused, failed or not — is an audit event of the tenant, carrying
  both the staff member and the user, counted on the impersonation;
- signing out ends it: the staff console's sign-out every open impersonation of that
  staff member, the tenant pages' sign-out the one in use.

Static files (endpoint `static`) are the only requests not audited.
"""
from flask import flash, g, request, session
from flask_login import current_user, user_logged_out

from portal.answers import refusal
from portal.extensions import db
from portal.support import services
from portal.tenancy.context import get_current_tenant

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Ending the impersonation is never a write to refuse.
ALWAYS_ALLOWED = {"support.end", "auth.tenant_logout"}
READ_ONLY = "read-only impersonation"
# With write access, only these writes: changes that end with the impersonation. Fail
# closed: a new route is refused here until it is judged and listed. Not listed, so
# refused: API tokens, invitations, password links, re-enabled accounts, roles given,
# made or changed, custom domains added or verified, data exports. (Consent,
# `support_access`, is guarded in the settings service.)
WRITES_THAT_END_WITH_IT = {"selfservice.save_settings", "users.remove", "roles.delete", "tokens.revoke",
                           "domains.remove", "plans.ask"}
USER_ACTIONS_THAT_END_WITH_IT = {"disable"}  # users.change/<action>
NOT_LASTING = ("not while impersonating: API tokens, invitations, password links, accounts, roles and "
               "domains are for the tenant's own people to hand out")
# Not even to look: the data export holds every user's password hash, a copy that would
# outlive the impersonation.
NEVER = {"selfservice.export", "selfservice.download"}
NOT_THE_EXPORT = "not while impersonating: the data export is for the tenant's own people"


def install_sign_out(app):
    """Flask-Login's signal, for sign-outs anywhere (auth.staff_logout, auth.tenant_logout)."""
    user_logged_out.connect(on_sign_out, sender=app, weak=False)


def _impersonating():
    """Whether this request carries an impersonation in its tenant session."""
    return get_current_tenant() is not None and "impersonation" in session and request.endpoint != "static"


def enforce():
    """Before the view: None to go on, or the refusal."""
    if not _impersonating():
        return None
    view = getattr(current_user, "impersonation", None)  # the user loader accepts open ones only
    if view is None:
        services.close_lapsed(session["impersonation"], get_current_tenant().id)
        session.clear()
        flash("Your impersonation has ended.", "info")
        return None  # anonymous from here: the tenant's guard sends a page to sign-in
    g.impersonation = view
    if request.endpoint in NEVER:
        return _refuse_write(NOT_THE_EXPORT)
    if request.method in SAFE_METHODS or request.endpoint in ALWAYS_ALLOWED:
        return None
    if not view.write_allowed:
        return _refuse_write(READ_ONLY)
    if request.endpoint in WRITES_THAT_END_WITH_IT or (
            request.endpoint == "users.change"
            and (request.view_args or {}).get("action") in USER_ACTIONS_THAT_END_WITH_IT):
        return None
    return _refuse_write(NOT_LASTING)


def _refuse_write(message):
    # The tenant layout, so the banner (and its End button) stays on the page.
    return refusal(403, "Read-only", message, template="support/read_only.html")


def audit(response):
    """After the view: the request's audit event, whatever its answer."""
    view = g.get("impersonation")
    if view is None and _impersonating():
        # Another before-request hook answered before ours (a CSRF refusal): still audited.
        view = getattr(current_user, "impersonation", None)
    if view is not None:
        if response.status_code >= 400:
            db.session.rollback()  # a refused or failed request changes nothing: no leftovers ride along
        services.record_request(view, request.method, request.script_root + request.path, response.status_code,
                                request.host)
    return response


def on_sign_out(sender, user, **_extra):
    if getattr(user, "is_staff", False):
        services.end_all_for_staff(user.id, cause="signed_out")
    elif getattr(user, "impersonation", None) is not None:
        services.end(user.impersonation.id, cause="signed_out")
        session.pop("impersonation", None)
