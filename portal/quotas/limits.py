"""The limits step of the request pipeline (portal/pipeline.py): every request of a tenant,
in one place:

- requests a minute (the plan's `requests_per_minute`), every tenant request;
- API access (a plan feature) and API calls a day, on `/api/`, with
  X-RateLimit-Limit / -Remaining / -Reset headers;
- storage: over quota, writes are refused (reads go on; signing in and out still work);
- a write of a tenant a move has frozen waits for the switch (portal/lifecycle/fences.py);
- and counts each tenant's slow statements (PORTAL_SLOW_STATEMENT_MS) for staff.

Answers: 429 with Retry-After (JSON on the API, a page elsewhere), 403 for a feature the
plan lacks or a full quota. Static files are never counted nor refused.
"""
import logging
import time
import uuid

import redis
from flask import current_app, g, request

from portal.answers import refusal, wsgi_refusal
from portal.errors import feature_refusal
from portal.extensions import redis_holder
from portal.lifecycle import fences
from portal.services import entitlements, ratelimit
from portal.services.keys import tenant_key
from portal.services.metering import storage_bytes
from portal.tenancy.context import current_tenant, get_current_tenant

log = logging.getLogger(__name__)

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Over the storage quota, writes are refused, but not what frees space or ends access:
# removing users, roles, domains and tokens (and DELETE on the API), ending an impersonation.
FREEING = {"users.remove", "roles.delete", "domains.remove", "tokens.revoke", "support.end"}


class OverLimit:
    """Tenants refused for the rest of their current minute, in this process.

    Once a window's count has passed the limit it only grows until the window ends, so
    every further request of that window would be refused: answering it at once, in the
    WSGI middleware (no Flask, no session, no Redis), is exact, and makes a flooding
    tenant's refusals cheap for everyone else on the process. A change of the tenant's
    limits in this process lifts the block; in other processes it lasts to the minute's
    end."""

    def __init__(self):
        self._until = {}

    def block(self, tenant_id, seconds):
        self._until[tenant_id] = time.monotonic() + seconds

    def lift(self, tenant_id=None):
        if tenant_id is None:
            self._until.clear()
        else:
            self._until.pop(uuid.UUID(str(tenant_id)), None)

    def gate(self, app, tenant, environ, start_response):
        """Answer 429 for a blocked tenant, before the app runs (a resolver gate)."""
        until = self._until.get(tenant.id)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            self._until.pop(tenant.id, None)
            return None
        retry = max(1, int(left + 0.999))
        return wsgi_refusal(app, environ, start_response, 429, "Too many requests",
                            f"Too many requests this minute; try again in {retry} s.", {"Retry-After": retry})


def over_limit():
    return current_app.extensions["portal.over_limit"]


def count_slow_statement(tenant_id, elapsed_ms, statement):
    """A slow statement of a tenant: counted per UTC day, with the slowest kept."""
    day, left = ratelimit.day_window()
    try:
        client = redis_holder.client
        pipe = client.pipeline()
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


def enforce():
    """The limits step: None to go on, or the refusal."""
    tenant = get_current_tenant()
    if tenant is None or request.endpoint in (None, "static"):
        return None
    granted = entitlements.current()
    minute = ratelimit.requests_this_minute(tenant.id, granted.limit("requests_per_minute"))
    version = minute.placement_version
    if minute.frozen and request.method not in SAFE_METHODS:  # a move's freeze: wait for its end
        version = fences.wait_while_frozen(tenant.id, current_app.config["MOVE_HOLD_WRITES_MS"])
    if version is not None and version > tenant.placement_version:
        tenant = reload_tenant(tenant)  # a move has switched it: this request goes to the new place
    if not minute.allowed and minute.degraded:
        return refusal(429, "Try again shortly", "Request limits cannot be checked just now; try again shortly.",
                       {"Retry-After": 30})
    if not minute.allowed:
        over_limit().block(tenant.id, 60 - time.time() % 60)  # to the end of this very minute
        return refusal(429, "Too many requests",
                       f"This workspace allows {minute.limit} requests a minute; try again in "
                       f"{minute.reset_seconds} s.", {"Retry-After": minute.reset_seconds})
    if tenant.maintenance_reason and request.method not in SAFE_METHODS and request.blueprint != "auth":
        return refusal(503, "In maintenance", f"This workspace is in maintenance ({tenant.maintenance_reason}): "
                       "changes are paused; reading goes on.", {"Retry-After": 30})
    if request.blueprint == "api":
        if not granted.has("api_access"):
            return feature_refusal("api_access")
        day = ratelimit.api_call_today(tenant.id, granted.limit("api_calls_per_day"))
        g.api_calls = day
        if not day.allowed:
            return refusal(429, "Too many requests",
                           f"The plan allows {day.limit} API calls a day (UTC); the count starts again "
                           f"in {day.reset_seconds} s.", {"Retry-After": day.reset_seconds, **_headers(day)})
    if request.method not in SAFE_METHODS and request.method != "DELETE" and request.blueprint != "auth" \
            and request.endpoint not in FREEING:
        limit_mb = granted.limit("storage_mb")
        if limit_mb is not None and storage_bytes(tenant) > limit_mb * 1_048_576:
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
