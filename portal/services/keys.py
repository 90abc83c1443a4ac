"""The Redis key space. Tenant keys carry a hash tag (`t:{<id>}:`) so they stay on one
slot of a Redis Cluster, and a tenant's keys can be found by its prefix."""
from flask import current_app

from portal.extensions import redis_holder


def global_key(*parts):
    return ":".join([current_app.config["PORTAL_REDIS_PREFIX"], *map(str, parts)])


def tenant_key(tenant_id, *parts):
    return ":".join([current_app.config["PORTAL_REDIS_PREFIX"], f"t:{{{tenant_id}}}", *map(str, parts)])


def placement_version_key(tenant_id):
    """A tenant's published placement version: every request reads it (with its count) and
    reloads the tenant when it is newer than the one it holds (a move switched it)."""
    return tenant_key(tenant_id, "placement-version")


def registry_version_key(tenant_id):
    """Bumped after every committed change of a tenant's registry row (`forget_tenant`):
    every request reads it with its count, and a process whose cached TenantRef was read
    at another version reloads the tenant (a suspension or plan change made on another
    node is seen on the next request, not when the in-process cache expires)."""
    return tenant_key(tenant_id, "registry-version")


def frozen_key(tenant_id):
    """Present while a move has the tenant's writes frozen (portal/lifecycle/fences.py):
    every request reads it with its count, and a write waits for it to go."""
    return tenant_key(tenant_id, "frozen")


MGET_BATCH = 2000


def read_many(keys):
    """The values of `keys` (many tenants' keys: many slots of a cluster), in order: MGETs
    of MGET_BATCH keys in one pipeline, or on a Redis Cluster the client's MGET split by
    slot (`mget_nonatomic`). RedisError passes."""
    client = redis_holder.client
    if current_app.config["REDIS_CLUSTER"]:
        return client.mget_nonatomic(keys) if keys else []
    pipe = client.pipeline(transaction=False)
    for i in range(0, len(keys), MGET_BATCH):
        pipe.mget(keys[i:i + MGET_BATCH])
    return [value for batch in pipe.execute() for value in batch]


def clear_tenant_keys(tenant_id):
    """Remove every Redis key of the tenant (its hash-tagged prefix): SCAN and UNLINK,
    never KEYS. Returns how many were removed."""
    client, removed = redis_holder.client, 0
    batch = []
    for key in client.scan_iter(match=tenant_key(tenant_id, "*"), count=500):
        batch.append(key)
        if len(batch) >= 500:
            removed += client.unlink(*batch)
            batch = []
    if batch:
        removed += client.unlink(*batch)
    return removed
