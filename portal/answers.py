"""The portal's answers that are not a page of their own — refusals and errors — as an
HTML page or as JSON, decided by one rule (`wants_json`) wherever they are made: the
app's error handlers, its request hooks, and the WSGI middleware in front of the app.

Imports nothing of the portal's: every layer may use it.
"""
from flask import jsonify, make_response, render_template, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header


def is_api_path(path):
    """Whether `path` is on the API: `/api/...`, also under a tenant's `/t/<slug>/`
    (before the resolver has moved that prefix into SCRIPT_NAME)."""
    if path.startswith("/t/"):
        path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
    return path.startswith("/api/")


def wants_json(environ):
    """Whether the answer to this request is JSON: on the API, or when the client
    prefers JSON to HTML."""
    if is_api_path(environ.get("PATH_INFO") or "/"):
        return True
    accept = parse_accept_header(environ.get("HTTP_ACCEPT"), MIMEAccept)
    return accept.best_match(("text/html", "application/json")) == "application/json"


def refusal(status, title, message, headers=None, detail=None, template="errors/error.html", as_json=None,
            **extra):
    """A refusal or an error with its reason, in a request context: JSON
    `{"error": {"code", "message", ...extra}}`, or the page `template` (`as_json`: which,
    when already decided; else `wants_json`)."""
    if wants_json(request.environ) if as_json is None else as_json:
        response = jsonify(error={"code": status, "message": message, **extra})
        response.status_code = status
    else:
        response = make_response(render_template(template, status=status, title=title, message=message,
                                                 detail=detail), status)
    for name, value in (headers or {}).items():
        response.headers[name] = str(value)
    return response


def wsgi_refusal(app, environ, start_response, status, title, message, headers=None, detail=None):
    """The same answer from WSGI middleware, before the app has run for this request."""
    with app.request_context(environ):
        response = refusal(status, title, message, headers=headers, detail=detail)
    return response(environ, start_response)
