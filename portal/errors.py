"""Error pages: HTML for pages, JSON for /api/. The session is rolled back first."""
import logging

from flask import jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.extensions import db
from portal.services import entitlements
from portal.tenancy.context import NoTenantBound

log = logging.getLogger(__name__)

_MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have permission to do that.",
    404: "There is nothing at this address.",
    405: "That method is not allowed here.",
    410: "This is gone.",
}


def _answer(status, title, message):
    db.session.rollback()
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return jsonify(error={"code": status, "message": message}), status
    return render_template("errors/error.html", status=status, title=title, message=message), status


def refusal(status, title, message, headers=None, **extra):
    """A refusal with its reason: JSON on the API, the error page elsewhere."""
    if request.blueprint == "api":
        response = jsonify(error={"code": status, "message": message, **extra})
        response.status_code = status
    else:
        response = make_response(
            render_template("errors/error.html", status=status, title=title, message=message), status)
    for name, value in (headers or {}).items():
        response.headers[name] = str(value)
    return response


def feature_refusal(feature):
    """403 naming the plans that have `feature`."""
    label = entitlements.FEATURES.get(feature, feature)
    having = entitlements.plans_with(feature)
    where = f" It comes with {' and '.join(having)}." if having else ""
    return refusal(403, "Not in your plan", f"{label} is not part of your plan.{where}",
                   feature=feature, plans=having)


def permission_refusal(role, permission):
    """403 naming the permission the user's role lacks."""
    resource, _, action = permission.partition(".")
    return refusal(403, "Not allowed", f"Your role ({role}) may not {action} {resource}.", permission=permission)


NUL_REFUSED = "Text may not contain a NUL character (\\0)."


def _holds_nul():
    """Whether the path, a form field, a query argument or a JSON body holds a NUL character, which
    PostgreSQL cannot store in text (it would fail as a server error deep in a service)."""
    values = [request.path, *request.args.values(), *request.form.values()]
    if any("\x00" in value for value in values):
        return True
    return request.is_json and "\\u0000" in request.get_data(as_text=True)


def register(app):
    @app.before_request
    def _refuse_nul():
        if _holds_nul():
            return _answer(400, "Bad request", NUL_REFUSED)
        return None

    @app.errorhandler(CSRFError)
    def _csrf(exc):
        return _answer(400, "Form expired", f"{exc.description} Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def _http(exc):
        return _answer(exc.code, exc.name, _MESSAGES.get(exc.code, exc.description))

    @app.errorhandler(NoTenantBound)
    def _no_tenant(exc):
        log.error("tenant data asked for without a tenant: %s", exc)
        return _answer(404, "Not found", _MESSAGES[404])

    @app.errorhandler(Exception)
    def _unexpected(exc):
        if isinstance(exc, HTTPException):
            return _http(exc)
        log.exception("unhandled error")
        return _answer(500, "Internal Server Error", "Something went wrong on our side; it has been logged.")
