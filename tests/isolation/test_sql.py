"""Raw SQL as a tenant's own database role: another tenant's schema or database is out
of reach; under the pool's application role, RLS alone stops it."""
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from portal.tenancy.names import database_name, role_name, schema_name
from portal.tenancy.placement import placement_owner_url, silo_url


def _as_role(engine_url):
    return create_engine(engine_url, poolclass=None)


def test_bridge_role_cannot_read_another_bridge_schema_or_the_pool(app, factory, make_tiered):
    a, b = make_tiered("bridge"), make_tiered("bridge")
    factory.order(b, customer="b-secret")
    # Log in as A's own role (its derived password; trust auth in tests accepts it too).
    url = silo_url(a, app.config["DATABASE_URL"]).set(database=None)
    from sqlalchemy.engine import make_url

    url = make_url(app.config["DATABASE_URL"]).set(username=role_name(a.id), password="x")
    engine = _as_role(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(b.id)})
            for table in (f'"{schema_name(b.id)}".orders', "tenant_data.orders", "registry.tenants"):
                nested = conn.begin_nested()
                with pytest.raises(ProgrammingError, match="permission denied"):
                    conn.execute(text(f"select * from {table}"))
                nested.rollback()
            # Its own schema: only its own rows, even when it claims to be B.
            assert conn.execute(text(f'select count(*) from "{schema_name(a.id)}".orders')).scalar() == 0
    finally:
        engine.dispose()


def test_app_role_cannot_read_bridge_schema_without_switching(app, conn, make_tiered):
    tenant = make_tiered("bridge")
    nested = conn.begin_nested()
    with pytest.raises(ProgrammingError, match="permission denied"):
        conn.execute(text(f'select * from "{schema_name(tenant.id)}".orders'))
    nested.rollback()


def test_silo_role_cannot_open_another_silo_database(app, make_tiered):
    a, b = make_tiered("silo", "local"), make_tiered("silo", "local")
    a_url = silo_url(a, placement_owner_url(a.placement_env))
    engine = create_engine(a_url.set(database=database_name(b.id)), poolclass=None)
    try:
        with pytest.raises(OperationalError, match="permission denied for database|not have CONNECT"):
            engine.connect()
    finally:
        engine.dispose()
    own = create_engine(a_url, poolclass=None)
    try:
        with own.connect() as conn:
            assert conn.execute(text("select count(*) from tenant_data.orders")).scalar() == 0
            nested = conn.begin_nested()
            with pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text("create table tenant_data.sneaky (x int)"))
            nested.rollback()
    finally:
        own.dispose()


def test_silo_rls_applies_inside_its_own_database(app, factory, make_tiered):
    tenant = make_tiered("silo", "second")
    factory.order(tenant, customer="mine")
    engine = create_engine(silo_url(tenant, placement_owner_url(tenant.placement_env)), poolclass=None)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select count(*) from tenant_data.orders")).scalar() == 0  # no tenant set
            conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(tenant.id)})
            assert conn.execute(text("select count(*) from tenant_data.orders")).scalar() == 1
    finally:
        engine.dispose()
