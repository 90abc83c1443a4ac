"""Per-tenant counters in Redis: requests a minute and API calls a day.

Each check is one Lua script (INCR, and the window's expiry on the first hit), so it is
exact under concurrency: with a limit of 100, exactly 100 requests of a window are let
through, however many run at once. Windows are fixed: the minute, and the UTC day.
When Redis is unreachable the check fails open (RATE_LIMIT_FAIL_OPEN, default) or
closed, and logs a warning.
"""
import logging
import time
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

import redis
from flask import current_app

from portal.extensions import redis_holder
from portal.metrics import RATE_LIMIT_UNCHECKED, CountingRedis
from portal.services.keys import frozen_key, placement_version_key, registry_version_key, tenant_key

log = logging.getLogger(__name__)

# One round trip: count the hit (unless ARGV[2] is "0": unlimited), read the tenant's
# published placement version (KEYS[2]; portal/lifecycle/moves.py), whether a move has
# its writes frozen (KEYS[3]; portal/lifecycle/fences.py) and its registry version (KEYS[4];
# portal/tenancy/lookup.py); and, given KEYS[5] (an API call's day), count the day too, but
# only when the hit is let through (ARGV[3]: the hit's limit; ARGV[4]: the day key's
# expiry). Every key carries the tenant's hash tag: one Redis Cluster slot.
_COUNT = """
local count = 0
if ARGV[2] == '1' then
  count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
end
local day = false
if KEYS[5] and (ARGV[2] == '0' or count <= tonumber(ARGV[3])) then
  day = redis.call('INCR', KEYS[5])
  if day == 1 then redis.call('PEXPIRE', KEYS[5], ARGV[4]) end
end
return {count, redis.call('GET', KEYS[2]), redis.call('EXISTS', KEYS[3]), redis.call('GET', KEYS[4]), day}
"""


@dataclass
class Decision:
    allowed: bool
    limit: object  # None: unlimited
    count: int
    reset_seconds: int
    degraded: bool = False  # Redis unreachable
    placement_version: Optional[int] = None  # the tenant's, as published (None: not known)
    frozen: bool = False  # a move has the tenant's writes frozen
    registry_version: Optional[int] = None  # the tenant's registry row's, as published

    @property
    def remaining(self):
        return None if self.limit is None else max(0, self.limit - self.count)


def _script():
    """The counting script, registered once per app (with its Redis client)."""
    scripts = current_app.extensions.setdefault("portal.redis_scripts", {})
    if "count" not in scripts:
        scripts["count"] = redis_holder.client.register_script(_COUNT)
    return scripts["count"]


def minute_window(now=None):
    now = time.time() if now is None else now
    return int(now // 60), 60 - int(now % 60)


def day_window(now=None):
    now = datetime.now(timezone.utc) if now is None else now
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.strftime("%Y%m%d"), int(86400 - (now - midnight).total_seconds())


def hit(tenant_id, name, window, seconds_left, limit, with_version=False):
    """Count one hit in the tenant's window `window` of counter `name`; decide. With
    `with_version`, the tenant's published placement version comes back in the same round
    trip, and whether its writes are frozen (asked even when the limit is None: then
    nothing is counted)."""
    return Hit(tenant_id, name, window, seconds_left, limit, with_version).decision()


class Hit:
    """A hit being counted (`hit`'s arguments): the script is sent when it is made and its
    reply read by `decision()`, so that the caller can do other work while Redis answers
    (portal/quotas/limits.py checks the request's database connection out meanwhile).
    `decision()` must be called: until then the hit holds a Redis connection. On a Redis
    Cluster the script goes when `decision()` asks (its client sends no command early)."""

    def __init__(self, tenant_id, name, window, seconds_left, limit, with_version=False, day=None):
        self.name, self.limit, self.seconds_left, self.sent, self.unsent = name, limit, seconds_left, None, None
        self.day, self.day_count, self.day_key = day, None, None
        self.asks = limit is not None or with_version
        self.keys = [tenant_key(tenant_id, name, window), placement_version_key(tenant_id), frozen_key(tenant_id),
                     registry_version_key(tenant_id)]
        self.args = [seconds_left * 1000 + 1000, "0" if limit is None else "1"]
        if day is not None:  # (an API call, its day counted in the same round trip)
            self.day_key = tenant_key(tenant_id, "api", day.window)
            self.keys.append(self.day_key)
            self.args += [0 if limit is None else limit, day.seconds_left * 1000 + 1000]
        client = redis_holder.client
        if self.asks and isinstance(client, CountingRedis):
            try:
                self.sent = client.send_now("EVALSHA", _script().sha, len(self.keys), *self.keys, *self.args)
            except redis.RedisError as exc:
                # Not sent (Redis unreachable: taking a connection already went through the
                # client's retries): `decision` degrades at once rather than try it all again.
                self.unsent = exc

    def decision(self):
        if not self.asks:
            return Decision(True, None, 0, self.seconds_left)
        limit, seconds_left = self.limit, self.seconds_left
        try:
            count, version, frozen, registry, self.day_count = self._reply()
        except redis.RedisError as exc:
            fail_open = _fails_open(self.name, limit, exc)
            return Decision(fail_open, limit, 0, seconds_left, degraded=True)
        version, frozen = (int(version) if version is not None else None), bool(frozen)
        registry = int(registry) if registry is not None else None
        if limit is None:
            return Decision(True, None, 0, seconds_left, placement_version=version, frozen=frozen,
                            registry_version=registry)
        # The key outlives its window by a second of grace; the window itself ends in seconds_left.
        return Decision(int(count) <= limit, limit, int(count), max(1, seconds_left), placement_version=version,
                        frozen=frozen, registry_version=registry)

    def give_back_day(self):
        """The API call's day, counted with what was known when the script went, is not to
        count after all (the tenant was read again: whether it counts is decided afresh)."""
        counted, self.day, self.day_count = self.day_count, None, None
        if counted is not None:
            try:
                redis_holder.client.decr(self.day_key)
            except redis.RedisError as exc:
                log.warning("rate limit api: an API call counted too early stays counted: %s", exc)

    def day_decision(self, limit):
        """The API call's day (`day`), counted with this hit once `decision()` let it
        through: decided against `limit`, the day's limit it was sent for (a tenant read
        again since gave its count back: `give_back_day`)."""
        seconds_left = self.day.seconds_left
        if self.day_count is None:  # (Redis did not answer: as the hit itself)
            return Decision(_fails_open("api", limit, "no answer to the script"), limit, 0, seconds_left,
                            degraded=True)
        count = int(self.day_count)
        return Decision(count <= limit, limit, count, max(1, seconds_left))

    def _reply(self):
        if self.unsent is not None:
            raise self.unsent
        sent, self.sent = self.sent, None
        if sent is not None:
            try:
                return sent.reply()
            except (redis.exceptions.NoScriptError, redis.ConnectionError):
                # Not loaded on this server yet (the ordinary call loads it), or the connection
                # broke before the reply came: asked again the ordinary way, as the client's
                # own retries would (a script that ran before its reply was lost is then
                # counted twice: stricter). A reply later than the socket timeout is not
                # asked again: it degrades, as Redis being unreachable does.
                pass
        return _script()(keys=self.keys, args=self.args)


def _fails_open(name, limit, why):
    """Redis did not answer counter `name`: whether to let the request through (counted)."""
    fail_open = current_app.config["RATE_LIMIT_FAIL_OPEN"] or limit is None
    RATE_LIMIT_UNCHECKED.labels("open" if fail_open else "closed").inc()
    log.warning("rate limit %s: Redis unreachable, failing %s: %s", name, "open" if fail_open else "closed", why)
    return fail_open


Day = namedtuple("Day", "window seconds_left")


def requests_this_minute(tenant_id, limit, now=None):
    """A request of the tenant, counted; with the tenant's published placement version and
    whether its writes are frozen."""
    return minute_hit(tenant_id, limit, now).decision()


def minute_hit(tenant_id, limit, now=None, api_call=False):
    """`requests_this_minute`, sent: its Decision is the Hit's `decision()`. With
    `api_call`, the tenant's API calls today are counted in the same round trip when the
    minute lets the request through: `day_decision()` (what `api_call_today` decides)."""
    window, left = minute_window(now)
    day = Day(*day_window(None if now is None else datetime.fromtimestamp(now, timezone.utc))) if api_call else None
    return Hit(tenant_id, "rpm", window, left, limit, with_version=True, day=day)


def api_call_today(tenant_id, limit, now=None):
    window, left = day_window(now)
    return hit(tenant_id, "api", window, left, limit)


def read(tenant_id, name, window):
    """The current count of a window, without counting (usage pages)."""
    try:
        value = redis_holder.client.get(tenant_key(tenant_id, name, window))
    except redis.RedisError as exc:
        log.warning("usage: Redis unreachable: %s", exc)
        return None
    return int(value or 0)
