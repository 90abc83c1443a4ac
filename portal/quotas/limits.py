"""The limits step of the request pipeline (portal/pipeline.py): every request of a tenant,
in one place:

- requests a minute (the plan's `requests_per_minute`): every page and API call of the
  tenant, not its static files (stylesheets, scripts);
- API access (a plan feature) and API calls a day, on `/api/`, with
  X-RateLimit-Limit / -Remaining / -Reset headers;
- storage: over quota, writes are refused (reads go on; signing in and out still work);
- a write of a tenant a move has frozen waits for the switch (portal/lifecycle/fences.py);
- and counts each tenant's slow statements (PORTAL_SLOW_STATEMENT_MS) for staff.

Answers: 429 with Retry-After and "Try again in N seconds." (JSON on the API, elsewhere the
styled error page of the layout), 403 for a feature the plan lacks or a full quota. Static
files are never counted nor refused (the resolver lets them through before the gates; this
step returns at once for them), so a refusal page keeps its stylesheet.
"""
import logging
import time
import uuid

import redis
from flask import Response, current_app, g, request, session

from portal.answers import refusal, wants_json
from portal.errors import feature_refusal
from portal.extensions import redis_holder
from portal.lifecycle import fences
from portal.metrics import SLOW_STATEMENTS, refused
from portal.services import entitlements, ratelimit
from portal.services.keys import tenant_key
from portal.services.metering import storage_bytes
from portal.tenancy.context import current_tenant, get_current_tenant
from portal.tenancy.placement import RequestConnection
from portal.tenancy.resolve import status_refusal

log = logging.getLogger(__name__)

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Over the storage quota, writes are refused, but not what frees space or ends access:
# removing users, roles, domains and tokens (and DELETE on the API), ending an impersonation.
FREEING = {"users.remove", "roles.delete", "domains.remove", "tokens.revoke", "support.end"}


# The request a kept refusal page is made from: its prefix (SCRIPT_NAME, the key's), what
# it accepts (JSON or a page, the key's), and where it was sent (a request's own).
_PAGE_ENVIRON = ("SCRIPT_NAME", "HTTP_ACCEPT", "REQUEST_METHOD", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
                 "HTTP_HOST", "wsgi.url_scheme", "wsgi.input", "wsgi.errors", "wsgi.version", "wsgi.multithread",
                 "wsgi.multiprocess", "wsgi.run_once")


# How long a reverse proxy may repeat the gate's refusal of a tenant (deploy/nginx/): a
# flood's refusals then cost the web workers one request a second, not every one. Short, as
# its Retry-After is repeated as is, and a limit raised meanwhile is seen that much later.
FRONT_CACHE_SECONDS = 1


class OverLimit:
    """Tenants refused for the rest of their current minute, in this process.

    Once a window's count has passed the limit it only grows until the window ends, so
    every further request of that window would be refused: answering it at once, in the
    WSGI middleware (no Flask, no session, no Redis), is exact, and makes a flooding
    tenant's refusals cheap for everyone else on the process. A change of the tenant's
    limits in this process lifts the block; in other processes it lasts to the minute's
    end."""

    PAGES_KEPT = 512

    def __init__(self):
        self._until = {}  # tenant id: (monotonic end, the limit that was passed)
        self._pages = {}  # the refusals' pages (`_page`)

    def block(self, tenant_id, seconds, limit=None):
        self._until[tenant_id] = (time.monotonic() + seconds, limit)

    def lift(self, tenant_id=None):
        if tenant_id is None:
            self._until.clear()
        else:
            self._until.pop(uuid.UUID(str(tenant_id)), None)

    def gate(self, app, tenant, environ, start_response):
        """Answer 429 for a blocked tenant, before the app runs (a resolver gate)."""
        until, limit = self._until.get(tenant.id, (None, None))
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            self._until.pop(tenant.id, None)
            return None
        retry = max(1, int(left + 0.999))
        refused(environ, "rate_limit")
        body, content_type = self._page(app, environ, limit, retry)
        # X-Accel-Expires: an nginx in front may answer this tenant's next requests with
        # this answer for a second (deploy/nginx/; its Retry-After a second stale at most).
        headers = {"Retry-After": str(retry), "Vary": "Accept",  # (page or JSON, by Accept)
                   "X-Accel-Expires": str(FRONT_CACHE_SECONDS)}
        return Response(body, 429, headers, content_type=content_type)(environ, start_response)

    def _page(self, app, environ, limit, retry):
        """The refusal's body and type, made once for each (JSON or not, the path prefix its
        links start with, limit, seconds to wait): a flood's every request would otherwise
        render the same page again. Made for no one (from `_PAGE_ENVIRON` only: no cookie,
        so no flash message and no user; no path), so that no client's page holds anything
        of theirs."""
        key = (wants_json(environ), environ.get("SCRIPT_NAME", ""), limit, retry)
        page = self._pages.get(key)
        if page is None:
            # Only what the key holds, and what a request needs to be one: nothing else of
            # this client's request (its path, query, cookies) can reach the kept page.
            anyone = {name: environ[name] for name in _PAGE_ENVIRON if name in environ}
            anyone.update(PATH_INFO="/", QUERY_STRING="")
            with app.request_context(anyone):
                made = refusal(429, "Too many requests", minute_refusal(limit, retry), as_json=key[0])
            if len(self._pages) >= self.PAGES_KEPT:
                self._pages.clear()
            page = self._pages[key] = (made.get_data(), made.content_type)
        return page


def try_again(seconds):
    """"Try again in N seconds." — said by every 429 the portal answers."""
    return f"Try again in {seconds} second{'' if seconds == 1 else 's'}."


def minute_refusal(limit, seconds):
    allows = f"This workspace allows {limit} requests a minute" if limit is not None else "Too many requests"
    return f"{allows} (pages and API calls). {try_again(seconds)}"


def over_limit():
    return current_app.extensions["portal.over_limit"]


def count_slow_statement(tenant_id, elapsed_ms, statement):
    """A slow statement of a tenant: counted per UTC day, with the slowest kept."""
    SLOW_STATEMENTS.inc()
    day, left = ratelimit.day_window()
    try:
        client = redis_holder.client
        pipe = client.pipeline(transaction=False)  # (one tenant's keys: one slot, no MULTI needed)
        pipe.incr(tenant_key(tenant_id, "slow", day)).expire(tenant_key(tenant_id, "slow", day), left + 3600)
        pipe.zadd(tenant_key(tenant_id, "slowest", day), {statement[:300]: elapsed_ms}, gt=True)
        pipe.expire(tenant_key(tenant_id, "slowest", day), left + 3600)
        pipe.execute()
    except (redis.RedisError, RuntimeError) as exc:  # no Redis, or no app (a script)
        log.warning("slow statement of %s not counted: %s", tenant_id, exc)


def reload_tenant(tenant):
    """The tenant read afresh (its lookup entries forgotten), bound for this request."""
    fresh = current_app.extensions["portal.tenant_lookup"].reload(tenant.id, tenant.slug) or tenant
    current_tenant.set(fresh)  # the resolver resets it when the request ends
    request.environ["portal.tenant"] = fresh
    return fresh


def _loads_principal_from_tenant_data():
    """Whether the next step reads the tenant's database to load who this is: a signed-in
    session (Flask-Login's key), or an API token."""
    return "_user_id" in session or request.headers.get("Authorization", "").startswith("Bearer ")


def _refused_for_maintenance(tenant):
    """A change while the tenant is in maintenance (signing in and out still work)."""
    return bool(tenant.maintenance_reason) and request.method not in SAFE_METHODS and request.blueprint != "auth"


def _counts_a_day(tenant, granted):
    """Whether this request will be counted against the tenant's API calls a day, unless
    the minute refuses it: an API call the plan allows, not a write refused for maintenance
    (as `enforce` decides below, with what is known before the count)."""
    return (request.blueprint == "api" and granted.has("api_access")
            and granted.limit("api_calls_per_day") is not None and not _refused_for_maintenance(tenant))


def enforce():
    """The limits step: None to go on, or the refusal."""
    tenant = get_current_tenant()
    if tenant is None or request.endpoint in (None, "static"):
        return None
    granted = entitlements.current()
    # Sent; answered below (with an API call's count of the day, when one is to be counted).
    sent = ratelimit.minute_hit(tenant.id, granted.limit("requests_per_minute"),
                                api_call=_counts_a_day(tenant, granted))
    try:
        if _loads_principal_from_tenant_data():
            RequestConnection.open_early(tenant)  # its checkout's round trip while Redis answers
    finally:
        minute = sent.decision()
    version = minute.placement_version
    if minute.frozen and request.method not in SAFE_METHODS:  # a move's freeze: wait for its end
        RequestConnection.give_back()  # (a held write holds no connection: the tenant's reads go on)
        version = fences.wait_while_frozen(tenant.id, current_app.config["MOVE_HOLD_WRITES_MS"])
    if (version is not None and version > tenant.placement_version) or (
            minute.registry_version is not None and minute.registry_version != tenant.registry_version):
        # A move has switched it (this request goes to the new place), or its registry
        # row changed, maybe on another node (a suspension, a plan): read it again.
        tenant = reload_tenant(tenant)
        sent.give_back_day()  # (its call, if any, is counted below as the fresh tenant says)
        answer = status_refusal(tenant)
        if answer is not None:
            refused(request.environ, answer.reason)
            return refusal(answer.status, answer.title, answer.message, detail=answer.detail,
                           headers={"Retry-After": 30} if answer.status == 503 else None)
        entitlements.forget(tenant.id)  # (this process's: its plan or overrides may have changed)
        g.pop("entitlements", None)
        granted = entitlements.current()
    if not minute.allowed and minute.degraded:
        refused(request.environ, "rate_limit_unchecked")
        return refusal(429, "Try again shortly",
                       f"Request limits cannot be checked just now. {try_again(30)}", {"Retry-After": 30})
    if not minute.allowed:
        over_limit().block(tenant.id, 60 - time.time() % 60, minute.limit)  # to the end of this very minute
        refused(request.environ, "rate_limit")
        return refusal(429, "Too many requests", minute_refusal(minute.limit, minute.reset_seconds),
                       {"Retry-After": minute.reset_seconds})
    if _refused_for_maintenance(tenant):
        refused(request.environ, "maintenance")
        return refusal(503, "In maintenance", f"This workspace is in maintenance ({tenant.maintenance_reason}): "
                       "changes are paused; reading goes on.", {"Retry-After": 30})
    if request.blueprint == "api":
        if not granted.has("api_access"):
            refused(request.environ, "feature")
            return feature_refusal("api_access")
        if sent.day is not None:
            day = sent.day_decision(granted.limit("api_calls_per_day"))
        else:  # (not counted with the minute: an unlimited day, no round trip; or a tenant read again above)
            day = ratelimit.api_call_today(tenant.id, granted.limit("api_calls_per_day"))
        g.api_calls = day
        if not day.allowed:
            refused(request.environ, "api_quota")
            return refusal(429, "Too many requests",
                           f"The plan allows {day.limit} API calls a day (UTC); the count starts again at "
                           f"00:00 UTC. {try_again(day.reset_seconds)}",
                           {"Retry-After": day.reset_seconds, **_headers(day)})
    if request.method not in SAFE_METHODS and request.method != "DELETE" and request.blueprint != "auth" \
            and request.endpoint not in FREEING:
        limit_mb = granted.limit("storage_mb")
        if limit_mb is not None and storage_bytes(tenant) > limit_mb * 1_048_576:
            refused(request.environ, "storage_quota")
            return refusal(403, "Storage quota reached",
                           f"This workspace uses more than its {limit_mb} MB of storage: changes are "
                           "refused until some data is removed or the plan is raised; reading goes on.")
    return None


def rate_limit_headers(response):
    day = g.get("api_calls")
    if day is not None and day.limit is not None:
        for name, value in _headers(day).items():
            response.headers[name] = str(value)
    return response


def _headers(decision):
    return {"X-RateLimit-Limit": decision.limit, "X-RateLimit-Remaining": decision.remaining,
            "X-RateLimit-Reset": decision.reset_seconds}
