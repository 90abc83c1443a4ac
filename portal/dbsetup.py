"""Preparing a database: the application role, both migration histories, the grants.

Run as the owner (DATABASE_URL). Idempotent: `flask --app wsgi db-setup` may be run on
every deploy. Migrations never run at start-up of the web process.
"""
import os
import threading
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HISTORIES = {"registry": "registry", "tenant": "tenant_data"}


def owner_engine(url, database=None, autocommit=False):
    """An engine as the owner of a server (the registry's, or a placement's)."""
    url = make_url(url).set(drivername="postgresql+psycopg2")
    if database:
        url = url.set(database=database)
    options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    return create_engine(url, connect_args={"connect_timeout": 5}, **options)


@contextmanager
def owner_connection(url, database=None, autocommit=False):
    """One connection as a server's owner, on an engine of its own disposed after:
    autocommit, or one transaction."""
    engine = owner_engine(url, database=database, autocommit=autocommit)
    try:
        with (engine.connect() if autocommit else engine.begin()) as conn:
            yield conn
    finally:
        engine.dispose()


def ensure_app_role(conn, role, password=None):
    """Create the application role if missing: a login that owns nothing and is
    subject to row-level security (NOSUPERUSER, NOBYPASSRLS). NOINHERIT: it is made a
    member of each bridge tenant's role so that it may switch to it for a transaction,
    but it never holds those tenants' rights itself."""
    exists = conn.execute(text("select 1 from pg_roles where rolname = :r"), {"r": role}).first()
    verb = "ALTER" if exists else "CREATE"
    # format() quotes the identifier and the literal on the server side.
    sql = conn.execute(
        text(
            "select format('%s ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT', "
            "cast(:verb as text), cast(:role as text))"
        ),
        {"verb": verb, "role": role},
    ).scalar_one()
    if password:
        sql += conn.execute(text("select format(' PASSWORD %L', cast(:pw as text))"), {"pw": password}).scalar_one()
    conn.execute(text(sql))


def alembic_config(history, connection, schema=None, script_location=None):
    cfg = Config()
    cfg.set_main_option("script_location", script_location or os.path.join(ROOT, "migrations", history))
    cfg.attributes["connection"] = connection
    cfg.attributes["schema"] = schema or HISTORIES[history]
    return cfg


# Alembic's `op` and `context` are module-level proxies: two migrations running in
# threads of one process would use each other's connections. One at a time per process
# (the upgrade runner's parallel jobs are processes).
_ALEMBIC = threading.Lock()


def migrate(conn, history="registry", revision="head"):
    with _ALEMBIC:
        command.upgrade(alembic_config(history, conn), revision)


def migrate_schema(conn, schema, revision="head", script_location=None):
    """Apply the tenant history to one placement's `schema`; return the revision it is at."""
    cfg = alembic_config("tenant", conn, schema=schema, script_location=script_location)
    with _ALEMBIC:
        command.upgrade(cfg, revision)
    return current_revision(conn, schema)


def tenant_head(script_location=None):
    """The newest revision of the tenant history."""
    cfg = Config()
    cfg.set_main_option("script_location", script_location or os.path.join(ROOT, "migrations", "tenant"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(conn, schema):
    """The tenant-history revision of `schema` (None when never migrated)."""
    table = f"{conn.dialect.identifier_preparer.quote_schema(schema)}.alembic_version"
    exists = conn.execute(text("select to_regclass(:t)"), {"t": f"{schema}.alembic_version"}).scalar()
    return conn.execute(text(f"select version_num from {table}")).scalar() if exists else None


def grant_app_role(conn, role):
    q = conn.dialect.identifier_preparer.quote
    r = q(role)
    database = q(conn.execute(text("select current_database()")).scalar_one())
    statements = [
        f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {r}",
        f"GRANT USAGE ON SCHEMA registry, tenant_data TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA registry TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tenant_data TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA registry TO {r}",
        # Tables that later tenant migrations add to the pool get the same rights.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA tenant_data GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        # Audit events are append-only for the application.
        f"REVOKE UPDATE, DELETE, TRUNCATE ON registry.audit_events FROM {r}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON registry.alembic_version FROM {r}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON tenant_data.alembic_version FROM {r}",
    ]
    for statement in statements:
        conn.execute(text(statement))


def setup_database(cfg):
    """Role, migrations of both histories, grants: everything the app needs to serve."""
    engine = owner_engine(cfg["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            ensure_app_role(conn, cfg["PORTAL_APP_ROLE"], cfg["PORTAL_APP_PASSWORD"])
            migrate(conn, "registry")
            pool_revision = migrate_schema(conn, HISTORIES["tenant"])
            conn.execute(text("update registry.tenants set schema_version = :r where tier = 'pool'"),
                         {"r": pool_revision})
            grant_app_role(conn, cfg["PORTAL_APP_ROLE"])
    finally:
        engine.dispose()
