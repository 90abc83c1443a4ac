"""Tenant lookup by slug or custom domain, with a two-level cache.

A short in-process cache (seconds) in front of Redis (minutes) in front of the
registry. `forget_tenant()` is called after every change of a tenant: it drops the
entries and bumps the tenant's registry version in Redis. Each ref remembers the version
it was read at, and every request reads the published one with its rate-limit count
(one round trip, portal/services/ratelimit.py): a process holding an older ref reloads
it on that request, so a change made on one node is seen on every node's next request.
If Redis is unreachable, lookups go to the registry and a warning is logged (and other
processes see a change when their in-process entry expires, TENANT_CACHE_LOCAL_SECONDS).
"""
import json
import logging
import threading
import time
from dataclasses import replace

import redis
from flask import current_app
from sqlalchemy import inspect, select

from portal.extensions import db, redis_holder
from portal.models import Tenant, TenantDomain
from portal.services.keys import registry_version_key
from portal.tenancy.context import TenantRef

log = logging.getLogger(__name__)
_MISSING = object()
# States in which a tenant serves nothing: its version is removed, not bumped (a ref read
# before answers much as a fresh one would, 503, 404 or 410, until its cache entry ends),
# so that no Redis key of it is left.
NOT_SERVING = ("failed", "archived", "purged")


class TenantLookup:
    def __init__(self, prefix, local_seconds, redis_seconds):
        self.prefix = prefix
        self.local_seconds = local_seconds
        self.redis_seconds = redis_seconds
        self._local = {}
        self._lock = threading.Lock()

    # -- public -----------------------------------------------------------------
    def by_slug(self, slug):
        return self._get(f"slug:{slug}", lambda: self._load(Tenant.slug == slug))

    def by_id(self, tenant_id):
        return self._get(f"id:{tenant_id}", lambda: self._load(tenant_id=tenant_id))

    def by_domain(self, host):
        # Only a verified domain routes: a domain merely claimed (its TXT record not yet
        # seen) must never reach the tenant that claimed it.
        verified = select(TenantDomain.tenant_id).where(TenantDomain.domain == host,
                                                        TenantDomain.verified_at.is_not(None))
        return self._get(f"host:{host}", lambda: self._load(Tenant.id.in_(verified)))

    def invalidate(self, tenant_id, slug, domains=()):
        self._forget([f"id:{tenant_id}", f"slug:{slug}"] + [f"host:{d}" for d in domains], slug)

    def invalidate_many(self, tenants):
        """Forget many tenants at once: `tenants` is (id, slug, domains) triples."""
        keys = [key for tenant_id, slug, domains in tenants
                for key in [f"id:{tenant_id}", f"slug:{slug}"] + [f"host:{d}" for d in domains]]
        if keys:
            self._forget(keys, f"{len(tenants)} tenants")

    def invalidate_domains(self, domains):
        """Forget custom domains only: one starts routing (verified) or stops (removed)."""
        if domains:
            self._forget([f"host:{d}" for d in domains], ", ".join(domains))

    def reload(self, tenant_id, slug):
        """The tenant read from the registry, past both caches, and put back in them: for
        a process that learns another changed it (a move's switch). (Redis may hold a ref
        a slower process wrote after the change's own invalidation: not trusted here.)"""
        ref = self._load(tenant_id=tenant_id)
        if ref is not None:
            now = time.monotonic()
            for key in (f"id:{tenant_id}", f"slug:{slug}"):
                self._to_redis(key, ref)
                with self._lock:
                    self._local[key] = (now + self.local_seconds, ref)
        return ref

    def clear_local(self):
        with self._lock:
            self._local.clear()

    # -- internals --------------------------------------------------------------
    def _forget(self, keys, what):
        with self._lock:
            for key in keys:
                self._local.pop(key, None)
        try:
            for start in range(0, len(keys), 1000):  # (a plan's every tenant: not one huge command)
                redis_holder.client.delete(*[self._redis_key(k) for k in keys[start:start + 1000]])
        except redis.RedisError as exc:
            log.warning("tenant cache: could not invalidate %s in Redis: %s", what, exc)

    def _redis_key(self, key):
        return f"{self.prefix}:tenant:{key}"

    def _get(self, key, load):
        now = time.monotonic()
        hit = self._local.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        ref = self._from_redis(key)
        if ref is _MISSING:
            ref = load()
            if ref is not None:
                self._to_redis(key, ref)
        with self._lock:
            self._local[key] = (now + self.local_seconds, ref)
        return ref

    def _from_redis(self, key):
        try:
            raw = redis_holder.client.get(self._redis_key(key))
        except redis.RedisError as exc:
            log.warning("tenant cache: Redis unreachable, reading the registry: %s", exc)
            return _MISSING
        return _MISSING if raw is None else TenantRef.from_dict(json.loads(raw))

    def _to_redis(self, key, ref):
        try:
            redis_holder.client.set(self._redis_key(key), json.dumps(ref.to_dict()), ex=self.redis_seconds)
        except redis.RedisError as exc:
            log.warning("tenant cache: could not write to Redis: %s", exc)

    @staticmethod
    def _load(condition=None, tenant_id=None):
        """The ref of the tenant `condition` finds (`tenant_id`: its id, when known), with
        the registry version published before its row was read: a change committed in
        between bumps it after its commit, so this ref holds an older version and is read
        again at once (read after the row, an old row could carry the new version)."""
        tenant_id = tenant_id or db.session.execute(select(Tenant.id).where(condition)).scalar_one_or_none()
        if tenant_id is None:
            return None
        version = published_version(tenant_id)
        tenant = db.session.execute(select(Tenant).where(Tenant.id == tenant_id)).scalar_one_or_none()
        return None if tenant is None else replace(TenantRef.of(tenant), registry_version=version)


def published_version(tenant_id):
    """The tenant's registry version as published in Redis (None: none, or unreachable)."""
    try:
        found = redis_holder.client.get(registry_version_key(tenant_id))
    except redis.RedisError:
        return None
    return int(found) if found is not None else None


def forget_tenant(tenant, domains=None):
    """Drop `tenant` (a Tenant) from this app's lookup cache and from Redis, by id, slug
    and domains (`domains`: its names, read before a deletion), after a change of it has
    committed, and bump its registry version, so that every process reloads it on its next
    request. Every change of a tenant's registry row ends here."""
    domains = [d.domain for d in tenant.domains] if domains is None else domains
    current_app.extensions["portal.tenant_lookup"].invalidate(tenant.id, tenant.slug, domains)
    try:
        if tenant.status in NOT_SERVING or inspect(tenant).was_deleted:
            redis_holder.client.delete(registry_version_key(tenant.id))
        else:
            redis_holder.client.incr(registry_version_key(tenant.id))
    except redis.RedisError as exc:
        log.warning("tenant cache: could not bump the registry version of %s: %s", tenant.slug, exc)


def forget_plan_tenants(plan_codes):
    """Drop every tenant of the plans `plan_codes` from the lookup cache after a change of
    those plans has committed: a cached TenantRef carries its plan's statement timeout and
    connection cap."""
    if not plan_codes:
        return
    tenants = db.session.execute(select(Tenant.id, Tenant.slug).where(
        Tenant.plan_code.in_(plan_codes), Tenant.status.notin_(NOT_SERVING))).all()
    domains = {}
    for tenant_id, domain in db.session.execute(select(TenantDomain.tenant_id, TenantDomain.domain).join(
            Tenant, Tenant.id == TenantDomain.tenant_id).where(Tenant.plan_code.in_(plan_codes))):
        domains.setdefault(tenant_id, []).append(domain)
    current_app.extensions["portal.tenant_lookup"].invalidate_many(
        [(tenant_id, slug, domains.get(tenant_id, [])) for tenant_id, slug in tenants])
    try:
        for start in range(0, len(tenants), 1000):
            bump = redis_holder.client.pipeline(transaction=False)  # (one key each: any Redis Cluster slot)
            for tenant_id, _slug in tenants[start:start + 1000]:
                bump.incr(registry_version_key(tenant_id))
            bump.execute()
    except redis.RedisError as exc:
        log.warning("tenant cache: could not bump the registry versions of plans %s: %s", plan_codes, exc)


def forget_domains(*domains):
    """Drop custom domains from the lookup cache after a change has committed: one just
    verified must start routing, one just removed must stop, without waiting for the
    cache to expire. Called with the names, since a removed row is gone."""
    current_app.extensions["portal.tenant_lookup"].invalidate_domains(list(domains))
