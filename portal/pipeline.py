"""The request pipeline, installed in one step of the factory, in its order:

    resolve → limits → principal → impersonation → (blueprint guard) → view → audit

1. resolve (WSGI middleware, portal/tenancy/resolve.py): the tenant of the request, or
   an answer by itself (unknown 404, suspended 403, closed 410, bad Host 400); its
   gates answer a tenant already over its requests a minute before Flask runs at all.
   Static files pass every check: a refusal page keeps its stylesheet.
2. the request id, and input no service can store (a NUL character) refused;
3. limits (portal/quotas/limits.py): requests a minute, API access and calls a day,
   storage; they read the tenant's entitlements once for the request
   (`entitlements.current()`, the accessor views use too); while Redis answers the
   minute's count, the request's tenant connection is checked out for the next step;
4. principal: Flask-Login loads who is signed in, in this realm, while their session
   lives on the server (portal/auth/principals.py, portal/services/sessions.py); then
   every POST's CSRF token is checked (Flask-WTF);
5. impersonation (portal/support/impersonation.py): a lapsed one ends, writes are
   refused unless granted;
6. the blueprint's guard (portal/auth/guards.py), then the view;
7. after the view, newest hook first: the impersonated request's audit event, the
   API's rate-limit headers, the request id on the answer, who it was;
8. around it all (portal/metrics.py, outermost): each answer counted, and its log line
   written, once sent. `/healthz`, `/readyz` and `/metrics` pass the resolver untouched
   (any host, no tenant, no limit).

docs/architecture.md draws it.
"""
from flask import request
from flask_login import current_user

from portal import metrics
from portal.answers import refusal
from portal.extensions import csrf
from portal.logs import assign_request_id, echo_request_id, note_principal
from portal.quotas import limits
from portal.support import impersonation
from portal.tenancy.lookup import TenantLookup
from portal.tenancy.resolve import TenantResolver

# Answered to anyone alike: no one is loaded for them (health checks send no cookie anyway).
NO_PRINCIPAL = {"static", "health.healthz", "health.readyz", "metrics.scrape"}
NUL_REFUSED = "Text may not contain a NUL character (\\0)."


def install(app):
    lookup = TenantLookup(app.config["PORTAL_REDIS_PREFIX"], app.config["TENANT_CACHE_LOCAL_SECONDS"],
                          app.config["TENANT_CACHE_REDIS_SECONDS"])
    app.extensions["portal.tenant_lookup"] = lookup
    over_limit = app.extensions["portal.over_limit"] = limits.OverLimit()
    app.extensions["portal.entitlements"].listeners.append(over_limit.lift)
    app.wsgi_app = TenantResolver(app, app.wsgi_app, lookup, gates=[over_limit.gate])

    app.before_request(assign_request_id)
    app.before_request(refuse_nul)
    app.before_request(limits.enforce)
    app.before_request(load_principal)
    csrf.init_app(app)  # every POST's CSRF token, checked once we know who sent it
    app.before_request(impersonation.enforce)
    impersonation.install_sign_out(app)
    # after_request hooks run newest first: audit, then the headers, then the request id.
    app.after_request(echo_request_id)
    app.after_request(note_principal)  # who it was, for the request's log line
    app.after_request(limits.rate_limit_headers)
    app.after_request(impersonation.audit)
    # Outermost, so that it sees every answer (the resolver's too): counted and logged.
    metrics.install(app)


def refuse_nul():
    """A NUL character in the path, a query or form value or a JSON body: PostgreSQL cannot
    store it in text, so it would fail as a server error deep in a service."""
    values = [request.path, *request.args.values(), *request.form.values()]
    if any("\x00" in value for value in values) or (
            request.is_json and "\\u0000" in request.get_data(as_text=True)):
        return refusal(400, "Bad request", NUL_REFUSED)
    return None


def load_principal():
    """Who is signed in: loaded here, once, so every later step and the view see the same."""
    if request.endpoint not in NO_PRINCIPAL:
        current_user._get_current_object()
    return None

