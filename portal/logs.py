"""Structured logs: one JSON object a line, carrying `tenant` and `request_id`."""
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


def assign_request_id():
    """The request's id: the caller's X-Request-ID (printable, at most 64 characters), or a new one."""
    given = request.headers.get("X-Request-ID", "")[:64]
    g.request_id = given if given and given.isascii() and given.isprintable() else uuid.uuid4().hex


def echo_request_id(response):
    response.headers["X-Request-ID"] = g.get("request_id", "")
    return response
