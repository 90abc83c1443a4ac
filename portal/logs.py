"""Structured logs: one JSON object a line, carrying `tenant` and `request_id`.

Every request ends with one line of logger `portal.requests` (message "request"), written
when its answer is sent (portal/metrics.py's WSGI layer, so the resolver's refusals too):
`request_id`, `tenant` (slug or null), `user` (`staff:<id>`, `tenant:<tenant id>:<id>` or
null), `impersonator` (`staff:<id>` while support staff look through the user's eyes, else
null), `method`, `path` (no query string: it may carry a token), `endpoint`, `status`,
`duration_ms`."""
import json
import logging
import sys
import time
import uuid

from flask import g, has_request_context, request

from portal.tenancy.context import get_current_tenant


class JsonFormatter(logging.Formatter):
    def format(self, record):
        tenant = get_current_tenant()
        entry = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "tenant": tenant.slug if tenant else None,
            "request_id": g.get("request_id") if has_request_context() else None,
        }
        entry.update(getattr(record, "fields", None) or {})  # a request line's own
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def install(app):
    """JSON lines on stderr for the `portal` loggers (the request hooks are pipeline steps)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("portal")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False


def request_id_of(environ):
    """The caller's X-Request-ID (printable, at most 64 characters), or a new one; kept in
    `environ` (a request refused before the app gets one too, for its log line)."""
    if "portal.request_id" not in environ:
        given = environ.get("HTTP_X_REQUEST_ID", "")[:64]
        environ["portal.request_id"] = (given if given and given.isascii() and given.isprintable()
                                        else uuid.uuid4().hex)
    return environ["portal.request_id"]


def assign_request_id():
    """The request's id (see request_id_of)."""
    g.request_id = request_id_of(request.environ)


def note_principal(response):
    """After the view: who made the request, and who looked through their eyes, for its log
    line (whoever is loaded already: nobody is loaded for this)."""
    user = g.get("_login_user")
    if user is not None and getattr(user, "is_authenticated", False):
        request.environ["portal.user"] = user.get_id()
        view = g.get("impersonation") or getattr(user, "impersonation", None)
        if view is not None:
            request.environ["portal.impersonator"] = f"staff:{view.staff_id}"
    return response


_requests = logging.getLogger("portal.requests")


def request_line(environ, status, seconds):
    """The request's log line, once answered."""
    tenant = environ.get("portal.tenant")
    _requests.info("request", extra={"fields": {
        "request_id": request_id_of(environ),
        "tenant": tenant.slug if tenant is not None else None,
        "user": environ.get("portal.user"),
        "impersonator": environ.get("portal.impersonator"),
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
        "endpoint": environ.get("portal.endpoint"),
        "status": int(status) if str(status).isdigit() else status,
        "duration_ms": round(seconds * 1000, 1),
    }})


def echo_request_id(response):
    response.headers["X-Request-ID"] = g.get("request_id", "")
    return response
