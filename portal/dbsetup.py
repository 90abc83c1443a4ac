"""Preparing a database: the application role, both migration histories, the grants.

Run as the owner (DATABASE_URL). Idempotent: `flask --app wsgi db-setup` may be run on
every deploy. Migrations never run at start-up of the web process.
"""
import os

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HISTORIES = {"registry": "registry", "tenant": "tenant_data"}


def owner_engine(cfg):
    return create_engine(cfg["DATABASE_URL"], poolclass=None, pool_pre_ping=True)


def ensure_app_role(conn, role, password=None):
    """Create the application role if missing: a login that owns nothing and is
    subject to row-level security (NOSUPERUSER, NOBYPASSRLS)."""
    exists = conn.execute(text("select 1 from pg_roles where rolname = :r"), {"r": role}).first()
    verb = "ALTER" if exists else "CREATE"
    # format() quotes the identifier and the literal on the server side.
    sql = conn.execute(
        text(
            "select format('%s ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', "
            "cast(:verb as text), cast(:role as text))"
        ),
        {"verb": verb, "role": role},
    ).scalar_one()
    if password:
        sql += conn.execute(text("select format(' PASSWORD %L', cast(:pw as text))"), {"pw": password}).scalar_one()
    conn.execute(text(sql))


def alembic_config(history, connection):
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(ROOT, "migrations", history))
    cfg.attributes["connection"] = connection
    cfg.attributes["schema"] = HISTORIES[history]
    return cfg


def migrate(conn, history="registry", revision="head"):
    command.upgrade(alembic_config(history, conn), revision)


def grant_app_role(conn, role):
    q = conn.dialect.identifier_preparer.quote
    r = q(role)
    database = q(conn.execute(text("select current_database()")).scalar_one())
    statements = [
        f"GRANT CONNECT ON DATABASE {database} TO {r}",
        f"GRANT USAGE ON SCHEMA registry, tenant_data TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA registry TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tenant_data TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA registry TO {r}",
        # Audit events are append-only for the application.
        f"REVOKE UPDATE, DELETE, TRUNCATE ON registry.audit_events FROM {r}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON registry.alembic_version FROM {r}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON tenant_data.alembic_version FROM {r}",
    ]
    for statement in statements:
        conn.execute(text(statement))


def setup_database(cfg):
    """Role, migrations of both histories, grants: everything the app needs to serve."""
    engine = owner_engine(cfg)
    try:
        with engine.begin() as conn:
            ensure_app_role(conn, cfg["PORTAL_APP_ROLE"], cfg["PORTAL_APP_PASSWORD"])
            migrate(conn, "registry")
            migrate(conn, "tenant")
            grant_app_role(conn, cfg["PORTAL_APP_ROLE"])
    finally:
        engine.dispose()
