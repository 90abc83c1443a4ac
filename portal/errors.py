"""Error answers, in one place: every handler rolls the session back first and answers
through portal/answers.py (a page, or JSON on the API)."""
import logging

from flask import Response, request
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from portal.answers import refusal, wants_json
from portal.extensions import db
from portal.lifecycle.fences import REFUSED as FENCE_REFUSED
from portal.metrics import refused
from portal.services import entitlements
from portal.services.errors import NotFound
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
    return refusal(status, title, message)


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


# SQLSTATEs of a server going away: a connection exception (class 08), or the server
# shutting down, crashed or starting (57P01-57P03).
_GONE = ("08", "57P01", "57P02", "57P03")


def _connection_lost(exc):
    """A connection that broke or could not be made: SQLAlchemy invalidated it, or the
    driver's OperationalError or InterfaceError carries no SQLSTATE (nothing the server
    said, e.g. "connection already closed") or one of a server going away."""
    if exc.connection_invalidated:
        return True
    code = getattr(getattr(exc, "orig", None), "pgcode", None)
    return isinstance(exc, (OperationalError, InterfaceError)) and (code is None or code.startswith(_GONE))


def _session_open():
    """Whether this request's session could be opened (a page is drawn with it)."""
    try:
        request_ctx.session  # noqa: B018 (Flask raises when it was not opened)
    except (AssertionError, RuntimeError):
        return False
    return True


def register(app):
    @app.errorhandler(CSRFError)
    def _csrf(exc):
        return _answer(400, "Form expired", f"{exc.description} Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def _http(exc):
        original = getattr(exc, "original_exception", None)
        if isinstance(original, DBAPIError) and _connection_lost(original):
            # (raised where no handler is looked for by its class: opening or saving the
            # session, which lives in the database; Flask hands it over as a 500)
            return _database(original)
        return _answer(exc.code, exc.name, _MESSAGES.get(exc.code, exc.description))

    @app.errorhandler(NotFound)
    def _not_found(exc):
        return _answer(404, exc.title or "Not found", exc.message or _MESSAGES[404])

    @app.errorhandler(DBAPIError)
    def _database(exc):
        if _connection_lost(exc):
            # The server (or PgBouncer in front of it) went away under the request: a
            # restart, a failover. Not the request's fault, and worth retrying at once.
            db.session.rollback()
            log.warning("database connection lost: %s", str(getattr(exc, "orig", exc)).strip().splitlines()[:1])
            refused(request.environ, "database_unreachable")
            if request.method in ("GET", "HEAD", "OPTIONS"):
                message, headers = "The database could not be reached just now: try again in a moment.", \
                    {"Retry-After": "1"}
            else:  # (it may have broken after a commit: a blind retry could do a change twice)
                message, headers = ("The database connection broke during this change: it may not have been "
                                    "saved. Check, then try again."), None
            if not _session_open() and not wants_json(request.environ):
                # The sign-in session could not be read: no page (it needs the session).
                return Response(message + "\n", 503, headers, mimetype="text/plain")
            return refusal(503, "Try again", message, headers)
        if getattr(getattr(exc, "orig", None), "pgcode", None) == FENCE_REFUSED:
            # A fence around the tenant's rows refused the write (portal/lifecycle/fences.py).
            db.session.rollback()
            moving = "maintenance" not in str(exc.orig)
            refused(request.environ, "move_freeze" if moving else "maintenance")
            return refusal(503, "Changes paused", "This workspace is being moved: changes are paused for a "
                           "moment. Try again in a second; reading goes on." if moving else
                           "This workspace is in maintenance: changes are paused; reading goes on.",
                           {"Retry-After": 1 if moving else 30})
        return _unexpected(exc)

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
