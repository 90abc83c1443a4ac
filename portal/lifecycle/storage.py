"""A tenant's storage in its tier, in two provisioning steps, each idempotent and each
with its undo:

- storage: the bridge schema `t_<id>` or the silo database `<prefix><id>` on its
  placement, with the tenant tables (migrated as the owner); the pool needs nothing;
- role: the tenant's own login role, its grants on that schema or database only, and
  (bridge) the application role's membership so it can switch to it per transaction.

Names come from `portal.tenancy.names` (derived from the tenant id) and are quoted by
PostgreSQL's format('%I'), never formatted from user text.
"""
import logging
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import text
from sqlalchemy.engine import make_url

from portal.dbsetup import migrate_schema, owner_connection
from portal.tenancy.data import TENANT_SCHEMA, TENANT_TABLES
from portal.tenancy.names import database_name, role_name, role_password, schema_name
from portal.tenancy.placement import placement_owner_url

log = logging.getLogger(__name__)


def _ddl(conn, template, *identifiers):
    """Run DDL whose identifiers (and a password literal) PostgreSQL quotes itself."""
    if not identifiers:
        conn.execute(text(template))
        return
    params = {f"a{i}": value for i, value in enumerate(identifiers)}
    args = ", ".join(f"cast(:a{i} as text)" for i in range(len(identifiers)))
    sql = conn.execute(text(f"select format('{template}', {args})"), params).scalar_one()
    conn.execute(text(sql))


def _exists(conn, catalog_sql, name):
    return conn.execute(text(catalog_sql), {"n": name}).first() is not None


_ROLE = "select 1 from pg_roles where rolname = :n"
_DATABASE = "select 1 from pg_database where datname = :n"


def _current_database(conn):
    return conn.execute(text("select current_database()")).scalar_one()


def _registry_url():
    return current_app.config["DATABASE_URL"]


@contextmanager
def _owner(tier, url_env, database=None, autocommit=False):
    """A connection as the owner of the tenant's server: autocommit, or one transaction."""
    url = placement_owner_url(url_env) if tier == "silo" else _registry_url()
    with owner_connection(url, database=database, autocommit=autocommit) as conn:
        yield conn


# -- storage ------------------------------------------------------------------------------
def make_storage(tenant_id, tier, url_env=None, script_location=None):
    """Schema or database with the tenant tables; returns the tenant-history revision."""
    if tier == "pool":
        return None
    if tier == "bridge":
        schema = schema_name(tenant_id)
        with _owner(tier, url_env) as conn:
            _ddl(conn, "CREATE SCHEMA IF NOT EXISTS %I", schema)
            return migrate_schema(conn, schema, script_location=script_location)
    database = database_name(tenant_id)
    with _owner(tier, url_env, autocommit=True) as conn:
        if not _exists(conn, _DATABASE, database):
            _ddl(conn, "CREATE DATABASE %I", database)
        _ddl(conn, "REVOKE ALL ON DATABASE %I FROM PUBLIC", database)
    with _owner(tier, url_env, database) as conn:
        _ddl(conn, "REVOKE ALL ON SCHEMA public FROM PUBLIC")
        return migrate_schema(conn, TENANT_SCHEMA, script_location=script_location)


def drop_storage_only(tenant_id, tier, url_env=None):
    if tier == "bridge":
        with _owner(tier, url_env) as conn:
            _ddl(conn, "DROP SCHEMA IF EXISTS %I CASCADE", schema_name(tenant_id))
    elif tier == "silo":
        current_app.extensions["portal.silo_engines"].forget(tenant_id)
        with _owner(tier, url_env, autocommit=True) as conn:
            _ddl(conn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", database_name(tenant_id))


# -- role ---------------------------------------------------------------------------------
def _grant_tables(conn, schema, role):
    _ddl(conn, "GRANT USAGE ON SCHEMA %I TO %I", schema, role)
    # Table by table: GRANT ... ON ALL TABLES IN SCHEMA scans the whole catalog, which
    # grows with every tenant (measured: 1.3 ms at 10 schemas, 60 ms at 1,000).
    for table in TENANT_TABLES:
        if conn.execute(text("select to_regclass(:t)"), {"t": f'"{schema}"."{table.name}"'}).scalar():
            _ddl(conn, "GRANT SELECT, INSERT, UPDATE, DELETE ON %I.%I TO %I", schema, table.name, role)
    _ddl(conn, "ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I",
         schema, role)
    _ddl(conn, "REVOKE ALL ON %I.alembic_version FROM %I", schema, role)


def _create_role(conn, tenant_id):
    role = role_name(tenant_id)
    if not _exists(conn, _ROLE, role):
        _ddl(conn, "CREATE ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT",
             role, role_password(tenant_id))
    return role


def make_role(tenant_id, tier, url_env=None):
    """The tenant's login role with rights on its own schema or database only."""
    if tier == "pool":
        return
    if tier == "bridge":
        schema = schema_name(tenant_id)
        with _owner(tier, url_env) as conn:
            role = _create_role(conn, tenant_id)
            _grant_tables(conn, schema, role)
            # The application role may switch to the tenant's role (it is NOINHERIT, so
            # it does not hold the tenant's rights itself).
            _ddl(conn, "GRANT %I TO %I", role, current_app.config["PORTAL_APP_ROLE"])
            # Temporary tables: a tenant's rows are read in through one (portal/lifecycle/copying.py).
            _ddl(conn, "GRANT TEMPORARY ON DATABASE %I TO %I", _current_database(conn), role)
        return
    database = database_name(tenant_id)
    with _owner(tier, url_env, autocommit=True) as conn:
        role = _create_role(conn, tenant_id)
        _ddl(conn, "GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I", database, role)
    with _owner(tier, url_env, database) as conn:
        _grant_tables(conn, TENANT_SCHEMA, role)


def drop_role(tenant_id, tier, url_env=None):
    if tier == "pool":
        return
    role = role_name(tenant_id)
    if tier == "bridge":
        with _owner(tier, url_env) as conn:
            if _exists(conn, _ROLE, role):
                _ddl(conn, "DROP OWNED BY %I", role)
                _ddl(conn, "DROP ROLE %I", role)
        return
    database = database_name(tenant_id)
    current_app.extensions["portal.silo_engines"].forget(tenant_id)
    with _owner(tier, url_env, autocommit=True) as conn:
        if not _exists(conn, _ROLE, role):
            return
        has_database = _exists(conn, _DATABASE, database)
    if has_database:
        with _owner(tier, url_env, database) as conn:
            _ddl(conn, "DROP OWNED BY %I", role)
    with _owner(tier, url_env, autocommit=True) as conn:
        if has_database:
            _ddl(conn, "REVOKE ALL ON DATABASE %I FROM %I", database, role)
        _ddl(conn, "DROP ROLE IF EXISTS %I", role)


def set_role_limits(tenant_id, tier, url_env, connections, statement_timeout_ms):
    """The tenant role's own caps: connections, and a default statement timeout."""
    if tier == "pool":
        return
    with _owner(tier, url_env, autocommit=True) as conn:
        role = role_name(tenant_id)
        if _exists(conn, _ROLE, role):
            _ddl(conn, f"ALTER ROLE %I CONNECTION LIMIT {int(connections)}", role)
            _ddl(conn, f"ALTER ROLE %I SET statement_timeout = {int(statement_timeout_ms)}", role)


def server_of(tier, url_env=None):
    """Which PostgreSQL server holds a tier's storage: (host, port) of its owner URL. Two
    placements may name one server, and a tenant's role is one per server."""
    url = make_url(placement_owner_url(url_env) if tier == "silo" else _registry_url())
    return (url.host or "", url.port or 5432, url.query.get("host", ""))


def role_exists(tenant_id, tier, url_env=None):
    if tier == "pool":
        return False
    with _owner(tier, url_env, autocommit=True) as conn:
        return _exists(conn, _ROLE, role_name(tenant_id))


def release_role(tenant_id, tier, url_env=None):
    """Take back what the tenant's role holds for `tier` on its server, keeping the role
    (another tier of the tenant on the same server uses it: a move's two copies). Bridge:
    the application role's membership and TEMPORARY on the registry database; silo: its
    database's grants go with the database."""
    if tier != "bridge":
        return
    with _owner(tier, url_env) as conn:
        role = role_name(tenant_id)
        if _exists(conn, _ROLE, role):
            _ddl(conn, "REVOKE %I FROM %I", role, current_app.config["PORTAL_APP_ROLE"])
            _ddl(conn, "REVOKE TEMPORARY ON DATABASE %I FROM %I", _current_database(conn), role)


# -- both, for callers that want a whole tenant's storage ---------------------------------
def create_storage(tenant_id, tier, url_env=None, script_location=None):
    """Storage and role; on failure, both are undone. Returns the schema revision.
    (Provisioning runs the two as saga steps of their own; this is for a tenant's storage
    without the rest of provisioning: bench/tiers.py times it, the isolation tests use it.)"""
    try:
        revision = make_storage(tenant_id, tier, url_env, script_location)
        make_role(tenant_id, tier, url_env)
        return revision
    except Exception:
        log.warning("storage of %s (%s) failed; removing what was made", tenant_id, tier)
        drop_storage(tenant_id, tier, url_env)
        raise


def drop_storage(tenant_id, tier, url_env=None):
    drop_role(tenant_id, tier, url_env)
    drop_storage_only(tenant_id, tier, url_env)
