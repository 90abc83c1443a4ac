"""A tenant's storage in its tier: its schema or database, its own role, its tables.

Run as the owner of the placement (migrations and DDL are never the application role's).
Each `create_*` either finishes or leaves nothing behind: a bridge tenant's role, schema
and tables are made in one transaction; a silo tenant's database cannot be created inside
a transaction, so a failure after it drops the database and the role again.
Names come from `portal.tenancy.names` (derived from the tenant id) and are quoted by
PostgreSQL's format('%I'), never formatted from user text.
"""
import logging

from flask import current_app
from sqlalchemy import text

from portal.dbsetup import migrate_schema, owner_engine
from portal.tenancy.data import TENANT_SCHEMA
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


def _create_role(conn, tenant_id):
    _ddl(conn, "CREATE ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT",
         role_name(tenant_id), role_password(tenant_id))


def _grant_tables(conn, schema, role):
    _ddl(conn, "GRANT USAGE ON SCHEMA %I TO %I", schema, role)
    _ddl(conn, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I", schema, role)
    _ddl(conn, "ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I",
         schema, role)
    _ddl(conn, "REVOKE ALL ON %I.alembic_version FROM %I", schema, role)


# -- bridge -------------------------------------------------------------------------------
def create_bridge(tenant_id, script_location=None):
    """Role, schema `t_<id>`, tenant tables with RLS, grants: one transaction."""
    schema, role = schema_name(tenant_id), role_name(tenant_id)
    engine = owner_engine(current_app.config["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            _create_role(conn, tenant_id)
            _ddl(conn, "CREATE SCHEMA %I", schema)
            revision = migrate_schema(conn, schema, script_location=script_location)
            _grant_tables(conn, schema, role)
            # The application role may switch to the tenant's role (it is NOINHERIT, so
            # it does not hold the tenant's rights itself).
            _ddl(conn, "GRANT %I TO %I", role, current_app.config["PORTAL_APP_ROLE"])
    finally:
        engine.dispose()
    return revision


def drop_bridge(tenant_id):
    schema, role = schema_name(tenant_id), role_name(tenant_id)
    engine = owner_engine(current_app.config["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            _ddl(conn, "DROP SCHEMA IF EXISTS %I CASCADE", schema)
            if _role_exists(conn, role):
                _ddl(conn, "DROP OWNED BY %I", role)
                _ddl(conn, "DROP ROLE %I", role)
    finally:
        engine.dispose()


# -- silo ---------------------------------------------------------------------------------
def create_silo(tenant_id, url_env, script_location=None):
    """Role and database on the placement, tenant tables with RLS, grants. A failure
    after the database exists drops it and the role again."""
    owner_url = placement_owner_url(url_env)
    database, role = database_name(tenant_id), role_name(tenant_id)
    server = owner_engine(owner_url, autocommit=True)
    made_role = made_db = False
    try:
        with server.connect() as conn:
            _create_role(conn, tenant_id)
            made_role = True
            _ddl(conn, "CREATE DATABASE %I", database)
            made_db = True
            _ddl(conn, "REVOKE ALL ON DATABASE %I FROM PUBLIC", database)
            _ddl(conn, "GRANT CONNECT ON DATABASE %I TO %I", database, role)
        tenant_db = owner_engine(owner_url, database=database)
        try:
            with tenant_db.begin() as conn:
                _ddl(conn, "REVOKE ALL ON SCHEMA public FROM PUBLIC")
                revision = migrate_schema(conn, TENANT_SCHEMA, script_location=script_location)
                _grant_tables(conn, TENANT_SCHEMA, role)
        finally:
            tenant_db.dispose()
        return revision
    except Exception:
        log.warning("silo storage of %s failed; removing what was made", tenant_id)
        with server.connect() as conn:
            if made_db:
                _ddl(conn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", database)
            if made_role:
                _ddl(conn, "DROP ROLE IF EXISTS %I", role)
        raise
    finally:
        server.dispose()


def drop_silo(tenant_id, url_env):
    current_app.extensions["portal.silo_engines"].forget(tenant_id)
    server = owner_engine(placement_owner_url(url_env), autocommit=True)
    try:
        with server.connect() as conn:
            _ddl(conn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", database_name(tenant_id))
            _ddl(conn, "DROP ROLE IF EXISTS %I", role_name(tenant_id))
    finally:
        server.dispose()


def _role_exists(conn, role):
    return conn.execute(text("select 1 from pg_roles where rolname = :r"), {"r": role}).first() is not None


# -- any tier -----------------------------------------------------------------------------
def create_storage(tenant_id, tier, url_env=None, script_location=None):
    """Make the tenant's storage; return the tenant history's revision it is at."""
    if tier == "bridge":
        return create_bridge(tenant_id, script_location)
    if tier == "silo":
        return create_silo(tenant_id, url_env, script_location)
    return None  # pool: the shared tables exist already


def drop_storage(tenant_id, tier, url_env=None):
    if tier == "bridge":
        drop_bridge(tenant_id)
    elif tier == "silo":
        drop_silo(tenant_id, url_env)


def data_size(tenant):
    """Bytes the tenant's tables take: relation sizes for a schema or database; for the
    pool, None (the shared tables hold every pool tenant; see usage estimates)."""
    if tenant.tier == "pool":
        return None
    if tenant.tier == "bridge":
        url, database, schema = current_app.config["DATABASE_URL"], None, schema_name(tenant.id)
    else:
        url, database, schema = placement_owner_url(tenant.placement_env), database_name(tenant.id), TENANT_SCHEMA
    engine = owner_engine(url, database=database)
    try:
        with engine.connect() as conn:
            return conn.execute(text(
                "select coalesce(sum(pg_total_relation_size(c.oid)), 0) from pg_class c "
                "join pg_namespace n on n.oid = c.relnamespace where n.nspname = :s and c.relkind = 'r'"
            ), {"s": schema}).scalar_one()
    finally:
        engine.dispose()
