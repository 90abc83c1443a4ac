"""Sign-in throttling: failed sign-ins counted in Redis, per realm (the console, or one tenant).

Three budgets, each over LOGIN_THROTTLE_WINDOW seconds (restarted by each failure):

- an account from one address (LOGIN_FAILURES_PER_ACCOUNT, 5): guessing one password
  from one place stops quickly, and the account's owner elsewhere is not locked out;
- an account from anywhere (LOGIN_FAILURES_PER_ACCOUNT_TOTAL, 50): a guess spread over
  many addresses stops too; only such a spread attack can lock the owner out, for the window;
- an address in this realm (LOGIN_FAILURES_PER_ADDRESS, 50): one address trying many
  accounts. Counted per realm, so a busy address (an office behind NAT) failing on one
  tenant locks neither the console nor other tenants.

Keys of a tenant's realm carry its hash tag (one Redis Cluster slot); the console's carry
`{staff}`. When Redis is unreachable the throttle fails open (sign-in still works) and logs.
"""
import logging

import redis
from flask import current_app

from portal.extensions import redis_holder
from portal.services.keys import global_key, tenant_key

log = logging.getLogger(__name__)


class Throttled(Exception):
    def __init__(self, retry_after):
        super().__init__(f"Too many failed sign-ins. Try again in {max(1, retry_after // 60)} minute(s).")
        self.retry_after = retry_after


def _keys(tenant_id, email, address):
    """(account from this address, account anywhere, address) keys and their limits."""
    address, email = address or "unknown", email.lower()
    key = (lambda *parts: tenant_key(tenant_id, "signin-fail", *parts)) if tenant_id else \
        (lambda *parts: global_key("{staff}", "signin-fail", *parts))
    cfg = current_app.config
    return ((key("account", email, "from", address), cfg["LOGIN_FAILURES_PER_ACCOUNT"]),
            (key("account", email), cfg["LOGIN_FAILURES_PER_ACCOUNT_TOTAL"]),
            (key("address", address), cfg["LOGIN_FAILURES_PER_ADDRESS"]))


def check(tenant_id, email, address):
    """Raise Throttled when any budget of this sign-in is spent. `tenant_id`: None for the console."""
    keys = _keys(tenant_id, email, address)
    try:
        pipe = redis_holder.client.pipeline(transaction=False)
        for key, _limit in keys:
            pipe.get(key).ttl(key)
        replies = pipe.execute()
    except redis.RedisError as exc:
        log.warning("sign-in throttle: Redis unreachable, not throttling: %s", exc)
        return
    for n, (_key, limit) in enumerate(keys):
        count, ttl = replies[2 * n], replies[2 * n + 1]
        if int(count or 0) >= limit:
            raise Throttled(max(ttl, 60))


def failed(tenant_id, email, address):
    window = current_app.config["LOGIN_THROTTLE_WINDOW"]
    try:
        pipe = redis_holder.client.pipeline(transaction=False)
        for key, _limit in _keys(tenant_id, email, address):
            # Each failure restarts the window (EXPIRE NX would need Redis 7; the
            # embedded Redis is 6.2).
            pipe.incr(key).expire(key, window)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("sign-in throttle: Redis unreachable, failure not counted: %s", exc)


def succeeded(tenant_id, email, address):
    """A right password clears that account's count from this address (not the others)."""
    try:
        redis_holder.client.delete(_keys(tenant_id, email, address)[0][0])
    except redis.RedisError as exc:
        log.warning("sign-in throttle: Redis unreachable: %s", exc)
