"""Per-tenant counters in Redis: requests a minute and API calls a day.

Each check is one Lua script (INCR, and the window's expiry on the first hit), so it is
exact under concurrency: with a limit of 100, exactly 100 requests of a window are let
through, however many run at once. Windows are fixed: the minute, and the UTC day.
When Redis is unreachable the check fails open (RATE_LIMIT_FAIL_OPEN, default) or
closed, and logs a warning.
"""
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import redis
from flask import current_app

from portal.extensions import redis_holder
from portal.services.keys import tenant_key

log = logging.getLogger(__name__)

_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""
_scripts = {}


@dataclass
class Decision:
    allowed: bool
    limit: object  # None: unlimited
    count: int
    reset_seconds: int
    degraded: bool = False  # Redis unreachable

    @property
    def remaining(self):
        return None if self.limit is None else max(0, self.limit - self.count)


def _script(client):
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_COUNT)
    return script


def minute_window(now=None):
    now = time.time() if now is None else now
    return int(now // 60), 60 - int(now % 60)


def day_window(now=None):
    now = datetime.now(timezone.utc) if now is None else now
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.strftime("%Y%m%d"), int(86400 - (now - midnight).total_seconds())


def hit(tenant_id, name, window, seconds_left, limit):
    """Count one hit in the tenant's window `window` of counter `name`; decide."""
    if limit is None:
        return Decision(True, None, 0, seconds_left)
    key = tenant_key(tenant_id, name, window)
    try:
        count, _ttl = _script(redis_holder.client)(keys=[key], args=[seconds_left * 1000 + 1000])
    except redis.RedisError as exc:
        fail_open = current_app.config["RATE_LIMIT_FAIL_OPEN"]
        log.warning("rate limit %s: Redis unreachable, failing %s: %s", name, "open" if fail_open else "closed", exc)
        return Decision(fail_open, limit, 0, seconds_left, degraded=True)
    # The key outlives its window by a second of grace; the window itself ends in seconds_left.
    return Decision(int(count) <= limit, limit, int(count), max(1, seconds_left))


def requests_this_minute(tenant_id, limit, now=None):
    window, left = minute_window(now)
    return hit(tenant_id, "rpm", window, left, limit)


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
