"""While impersonating, in one place (app-level hooks, not per route):

- a lapsed impersonation (ended, expired, revoked) is closed and its session cleared;
- writes are refused ("read-only impersonation") unless write access was granted;
- every request — refused, failed or not — is an audit event of the tenant, carrying
  both the staff member and the user, counted on the impersonation;
- signing out ends it: the staff console's sign-out every open impersonation of that
  staff member, the tenant pages' sign-out the one in use.

Static files (endpoint `static`) are the only requests not audited.
"""
from flask import flash, g, render_template, request, session
from flask_login import current_user, user_logged_out

from portal.errors import refusal
from portal.extensions import db
from portal.support import services
from portal.tenancy.context import get_current_tenant

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Ending the impersonation is never a write to refuse.
ALWAYS_ALLOWED = {"impersonation.end", "auth.tenant_logout"}
READ_ONLY = "read-only impersonation"


def install(bp):
    bp.before_app_request(_before)
    bp.after_app_request(_after)
    # Flask-Login's signal, for sign-outs anywhere (auth.staff_logout, auth.tenant_logout).
    bp.record_once(lambda state: user_logged_out.connect(_on_sign_out, sender=state.app, weak=False))


def _impersonating():
    """Whether this request carries an impersonation in its tenant session."""
    return get_current_tenant() is not None and "impersonation" in session and request.endpoint != "static"


def _before():
    if not _impersonating():
        return None
    view = getattr(current_user, "impersonation", None)  # the user loader accepts open ones only
    if view is None:
        services.close_lapsed(session["impersonation"], get_current_tenant().id)
        session.clear()
        flash("Your impersonation has ended.", "info")
        return None  # anonymous from here: the tenant's guard sends a page to sign-in
    g.impersonation = view
    if not view.write_allowed and request.method not in SAFE_METHODS and request.endpoint not in ALWAYS_ALLOWED:
        return _refuse_write()
    return None


def _refuse_write():
    if request.blueprint == "api":
        return refusal(403, "Read-only", READ_ONLY)
    # The tenant layout, so the banner (and its End button) stays on the page.
    return render_template("support/read_only.html", message=READ_ONLY), 403


def _after(response):
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


def _on_sign_out(sender, user, **_extra):
    if getattr(user, "is_staff", False):
        services.end_all_for_staff(user.id, cause="signed_out")
    elif getattr(user, "impersonation", None) is not None:
        services.end(user.impersonation.id, cause="signed_out")
        session.pop("impersonation", None)
