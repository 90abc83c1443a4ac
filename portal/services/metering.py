"""How much of its plan a tenant uses: users, storage, API calls today, requests this
minute.

Storage is measured per tier: a bridge schema or silo database by its relations' sizes
(tables, indexes, TOAST); a pool tenant, whose rows share tables with other tenants, by
the sum of `pg_column_size` of its rows (the data itself, without its share of indexes
and free space: an honest lower estimate). Storage is cached in Redis for
STORAGE_CACHE_SECONDS.
"""
import logging

import redis
from flask import current_app
from sqlalchemy import func, select, text, union_all

from portal.dbsetup import owner_connection
from portal.extensions import redis_holder
from portal.services import ratelimit
from portal.services.keys import tenant_key
from portal.tenancy.data import KEPT_TABLES, TENANT_TABLES, TenantUser
from portal.tenancy.names import database_name, schema_name
from portal.tenancy.placement import placement_owner_url, tenant_session

log = logging.getLogger(__name__)
# How long the staff console's quota pages show a tenant's last measure of its users and
# storage (portal/quotas/services.py reads them from Redis and measures nothing itself).
SEEN_SECONDS = 7 * 86400


def user_count(tenant, session=None):
    """How many users `tenant` has (in `session`, when one is open on it already)."""
    if session is not None:
        counted = session.execute(select(func.count()).select_from(TenantUser)).scalar_one()
        remember_seen(tenant.id, "users", counted)
        return counted
    with tenant_session(tenant) as session:
        return user_count(tenant, session)


def storage_bytes(tenant, fresh=False):
    """The bytes the tenant's rows take where it is, measured at most every
    STORAGE_CACHE_SECONDS (Redis), or now (`fresh`)."""
    key = tenant_key(tenant.id, "storage-bytes")
    if not fresh:
        try:
            cached = redis_holder.client.get(key)
            if cached is not None:
                return int(cached)
        except redis.RedisError as exc:
            log.warning("storage cache: Redis unreachable: %s", exc)
    measured = measure_storage(tenant)
    remember_storage(tenant.id, measured)
    return measured


def remember_storage(tenant_id, measured):
    """Keep a measurement for every process (a move's switch gives the new place's)."""
    try:
        redis_holder.client.set(tenant_key(tenant_id, "storage-bytes"), measured,
                                ex=current_app.config["STORAGE_CACHE_SECONDS"])
    except redis.RedisError:
        pass
    remember_seen(tenant_id, "storage", measured)


def remember_seen(tenant_id, name, value):
    """Keep the last measure of `name` ("users", "storage") for SEEN_SECONDS: what the
    staff console's quota pages show for the tenant."""
    try:
        redis_holder.client.set(tenant_key(tenant_id, f"{name}-seen"), value, ex=SEEN_SECONDS)
    except redis.RedisError:
        pass


def measure_storage(tenant):
    """The bytes of `tenant`'s rows where `tenant` (a TenantRef) says, measured now (what
    dashboards keep is derived, not the tenant's data: not counted)."""
    if tenant.tier == "pool":
        # One statement: the sizes of its rows in every tenant table (RLS: its rows only).
        per_table = union_all(*(select(func.coalesce(func.sum(func.pg_column_size(table.table_valued())), 0)
                                       .label("bytes")) for table in TENANT_TABLES
                                 if table not in KEPT_TABLES)).subquery()
        with tenant_session(tenant) as session:
            return int(session.execute(select(func.sum(per_table.c.bytes))).scalar_one())
    if tenant.tier == "bridge":
        url, database, schema = current_app.config["DATABASE_URL"], None, schema_name(tenant.id)
    else:
        url, database, schema = placement_owner_url(tenant.placement_env), database_name(tenant.id), "tenant_data"
    with owner_connection(url, database=database, autocommit=True) as conn:
        return int(conn.execute(text(
            "select coalesce(sum(pg_total_relation_size(c.oid)), 0) from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where n.nspname = :s and c.relkind = 'r' "
            "and c.relname <> ALL(:kept)"
        ), {"s": schema, "kept": [table.name for table in KEPT_TABLES]}).scalar_one())


def usage(tenant, entitlements):
    """Each metered quantity against its limit: [(label, used, limit, unit)]."""
    minute, _ = ratelimit.minute_window()
    day, _ = ratelimit.day_window()
    return [
        ("Users", user_count(tenant), entitlements.limit("max_users"), ""),
        ("Storage", round(storage_bytes(tenant) / 1_048_576, 2), entitlements.limit("storage_mb"), " MB"),
        ("API calls today", ratelimit.read(tenant.id, "api", day), entitlements.limit("api_calls_per_day"), ""),
        ("Requests this minute", ratelimit.read(tenant.id, "rpm", minute),
         entitlements.limit("requests_per_minute"), ""),
    ]
