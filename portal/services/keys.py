"""The Redis key space. Tenant keys carry a hash tag (`t:{<id>}:`) so they stay on one
slot of a Redis Cluster, and a tenant's keys can be found by its prefix."""
from flask import current_app


def global_key(*parts):
    return ":".join([current_app.config["PORTAL_REDIS_PREFIX"], *map(str, parts)])


def tenant_key(tenant_id, *parts):
    return ":".join([current_app.config["PORTAL_REDIS_PREFIX"], f"t:{{{tenant_id}}}", *map(str, parts)])
