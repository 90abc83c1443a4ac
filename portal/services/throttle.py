"""Sign-in throttling: failures counted per account and per address in Redis.

When Redis is unreachable the throttle fails open (sign-in still works) and logs.
"""
import logging

import redis
from flask import current_app

from portal.extensions import redis_holder
from portal.services.keys import global_key

log = logging.getLogger(__name__)


class Throttled(Exception):
    def __init__(self, retry_after):
        super().__init__(f"Too many failed sign-ins. Try again in {max(1, retry_after // 60)} minute(s).")
        self.retry_after = retry_after


def _keys(realm, email, address):
    return (
        global_key("signin-fail", realm, "account", email.lower()),
        global_key("signin-fail", "address", address or "unknown"),
    )


def check(realm, email, address):
    """Raise Throttled when the account or the address has failed too often."""
    cfg = current_app.config
    account_key, address_key = _keys(realm, email, address)
    try:
        pipe = redis_holder.client.pipeline()
        pipe.get(account_key).get(address_key).ttl(account_key).ttl(address_key)
        account, address_count, account_ttl, address_ttl = pipe.execute()
    except redis.RedisError as exc:
        log.warning("sign-in throttle: Redis unreachable, not throttling: %s", exc)
        return
    if int(account or 0) >= cfg["LOGIN_FAILURES_PER_ACCOUNT"]:
        raise Throttled(max(account_ttl, 60))
    if int(address_count or 0) >= cfg["LOGIN_FAILURES_PER_ADDRESS"]:
        raise Throttled(max(address_ttl, 60))


def failed(realm, email, address):
    window = current_app.config["LOGIN_THROTTLE_WINDOW"]
    try:
        pipe = redis_holder.client.pipeline()
        for key in _keys(realm, email, address):
            # Each failure restarts the window (EXPIRE NX would need Redis 7; the
            # embedded Redis is 6.2).
            pipe.incr(key).expire(key, window)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("sign-in throttle: Redis unreachable, failure not counted: %s", exc)


def succeeded(realm, email, address):
    try:
        redis_holder.client.delete(_keys(realm, email, address)[0])
    except redis.RedisError as exc:
        log.warning("sign-in throttle: Redis unreachable: %s", exc)
