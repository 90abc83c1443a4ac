"""The tenant-aware cache: results kept in Redis under the tenant's hash-tagged prefix
(`<prefix>:t:{<id>}:cache:<name>`, one Redis Cluster slot per tenant), with a TTL.

A tenant's results go stale at once when its data changes: each entry holds the
tenant's cache version it was computed at, and `touch` (called by whatever changes the
data, such as the event ingest) increments that version. A read fetches the version
and the entry in one MGET (same slot), and an entry of an older version is a miss.

Redis is a help, never a need: when it cannot be reached, `get` misses and `set`,
`touch` and `delete` do nothing (logged), so callers answer from the database.
`clear` and `stats` walk the tenant's keys with SCAN (never KEYS), in batches.
"""
import json
import logging
import time

import redis

from portal.extensions import redis_holder
from portal.services.keys import tenant_key

log = logging.getLogger(__name__)

SCAN_BATCH = 500


def _entry_key(tenant_id, name):
    return tenant_key(tenant_id, "cache", name)


def _version_key(tenant_id):
    return tenant_key(tenant_id, "cache-version")


def _read(tenant_id, name):
    """(the tenant's cache version, the entry's value if it was computed at that version,
    else None); (None, None) when Redis cannot be reached."""
    try:
        version, raw = redis_holder.client.mget(_version_key(tenant_id), _entry_key(tenant_id, name))
    except redis.RedisError as exc:
        log.warning("cache read of tenant %s failed: %s", tenant_id, exc)
        return None, None
    version = version or _new_epoch(tenant_id)
    if raw is None:
        return version, None
    entry = json.loads(raw)
    return version, (entry["value"] if entry.get("version") == version else None)


def _new_epoch(tenant_id):
    """The tenant's version when it has none (never set, or evicted under memory
    pressure): a new number never used before, so entries from an earlier epoch stay
    stale, instead of starting again at a number they may carry."""
    client = redis_holder.client
    client.set(_version_key(tenant_id), time.time_ns(), nx=True)
    return client.get(_version_key(tenant_id))


def get(tenant_id, name):
    """The cached value of `name` for the tenant, or None (missing, stale, expired, or
    Redis unreachable)."""
    return _read(tenant_id, name)[1]


def set(tenant_id, name, value, ttl_seconds, version=None):
    """Keep `value` (JSON-able) for `ttl_seconds`, marked with `version`: the tenant's
    cache version read before `value` was computed (default: the current one), so that a
    change made while it was computed leaves it stale."""
    client = redis_holder.client
    try:
        version = version if version is not None else (client.get(_version_key(tenant_id)) or _new_epoch(tenant_id))
        client.set(_entry_key(tenant_id, name), json.dumps({"version": version, "value": value}, default=str),
                   ex=max(1, int(ttl_seconds)))
    except redis.RedisError as exc:
        log.warning("cache write of tenant %s failed: %s", tenant_id, exc)


def cached(tenant_id, name, ttl_seconds, compute):
    """The cached value of `name`, or `compute()` kept for next time. Returns (value, hit)."""
    version, value = _read(tenant_id, name)
    if value is not None:
        return value, True
    value = compute()
    if version is not None:  # None: Redis is down, nothing to keep it in
        set(tenant_id, name, value, ttl_seconds, version)
    return value, False


def delete(tenant_id, name):
    try:
        redis_holder.client.unlink(_entry_key(tenant_id, name))
    except redis.RedisError as exc:
        log.warning("cache delete of tenant %s failed: %s", tenant_id, exc)


def touch(tenant_id):
    """The tenant's data changed: every entry cached before now is stale."""
    try:
        redis_holder.client.incr(_version_key(tenant_id))
    except redis.RedisError as exc:
        log.warning("cache version of tenant %s not raised: %s", tenant_id, exc)


def _scan(tenant_id):
    """The tenant's cache keys, in batches (SCAN: Redis serves others between them)."""
    batch = []
    for key in redis_holder.client.scan_iter(match=_entry_key(tenant_id, "*"), count=SCAN_BATCH):
        batch.append(key)
        if len(batch) >= SCAN_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def clear(tenant_id):
    """Remove every cached entry of the tenant (SCAN and UNLINK); returns how many.
    Raises redis.RedisError when Redis cannot be reached (the caller says so)."""
    removed = 0
    for batch in _scan(tenant_id):
        removed += redis_holder.client.unlink(*batch)
    touch(tenant_id)
    return removed


def stats(tenant_id):
    """{"keys", "bytes", "version"} of the tenant's cache: SCAN, then MEMORY USAGE of each
    batch in one pipeline. Raises redis.RedisError when Redis cannot be reached."""
    client = redis_holder.client
    keys = size = 0
    for batch in _scan(tenant_id):
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key)
        sizes = pipe.execute()
        keys += len(batch)
        size += sum(s or 0 for s in sizes)
    return {"keys": keys, "bytes": size, "version": int(client.get(_version_key(tenant_id)) or 0)}
