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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("portal")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False

    @app.before_request
    def _request_id():
        g.request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response
