"""Row-level security at raw-SQL depth, as the application role: RLS alone stops it."""
import uuid

import pytest
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from portal.extensions import db
from portal.tenancy.context import tenant_context
from portal.tenancy.data import TENANT_TABLES, Order
from portal.tenancy.placement import tenant_session

SET_TENANT = text("select set_config('app.tenant_id', :id, true)")


@pytest.fixture()
def two_tenants(factory):
    a, b = factory.tenant(), factory.tenant()
    for n in range(3):
        factory.order(a, number=n + 1, customer=f"a-customer-{n}")
    for n in range(2):
        factory.order(b, number=n + 1, customer=f"b-customer-{n}")
    return a, b


def _in_savepoint(conn, tenant_id=None):
    """A nested transaction of the test's connection, with the tenant set (or not)."""
    nested = conn.begin_nested()
    conn.execute(text("select set_config('app.tenant_id', '', true)"))
    if tenant_id is not None:
        conn.execute(SET_TENANT, {"id": str(tenant_id)})
    return nested


def test_app_role_is_not_privileged(conn, servers):
    row = conn.execute(text(
        "select rolsuper, rolbypassrls from pg_roles where rolname = current_user"
    )).one()
    assert conn.execute(text("select current_user")).scalar() == servers.app_role
    assert row == (False, False)
    owned = conn.execute(text(
        "select count(*) from pg_tables where tableowner = current_user"
    )).scalar()
    assert owned == 0


def test_every_tenant_table_has_forced_rls(conn):
    rows = conn.execute(text(
        "select c.relname, c.relrowsecurity, c.relforcerowsecurity from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'tenant_data' and c.relkind = 'r' and c.relname <> 'alembic_version'"
    )).all()
    assert {r.relname for r in rows} == {t.name for t in TENANT_TABLES}
    assert {"users", "orders", "settings", "api_tokens", "events"} <= {r.relname for r in rows}
    assert all(r.relrowsecurity and r.relforcerowsecurity for r in rows)


def test_no_tenant_sees_no_rows(conn, two_tenants):
    nested = _in_savepoint(conn)
    assert conn.execute(text("select count(*) from tenant_data.orders")).scalar() == 0
    assert conn.execute(text("select count(*) from tenant_data.users")).scalar() == 0
    nested.rollback()


def test_tenant_sees_only_its_rows(conn, two_tenants):
    a, b = two_tenants
    nested = _in_savepoint(conn, a.id)
    rows = conn.execute(text("select tenant_id, customer from tenant_data.orders")).all()
    assert len(rows) == 3 and {r.tenant_id for r in rows} == {a.id}
    nested.rollback()


def test_insert_of_another_tenants_row_is_rejected(conn, two_tenants):
    a, b = two_tenants
    nested = _in_savepoint(conn, a.id)
    with pytest.raises(ProgrammingError, match="row-level security"):
        conn.execute(text(
            "insert into tenant_data.orders (tenant_id, id, number, customer, amount_cents, status) "
            "values (:t, :id, 99, 'sneaky', 1, 'open')"
        ), {"t": b.id, "id": uuid.uuid4()})
    nested.rollback()


def test_insert_without_tenant_fails(conn, two_tenants):
    a, _ = two_tenants
    nested = _in_savepoint(conn)
    with pytest.raises(ProgrammingError, match="row-level security"):
        conn.execute(text(
            "insert into tenant_data.orders (tenant_id, id, number, customer, amount_cents, status) "
            "values (:t, :id, 99, 'nobody', 1, 'open')"
        ), {"t": a.id, "id": uuid.uuid4()})
    nested.rollback()


def test_update_without_where_touches_only_own_rows(conn, two_tenants):
    a, b = two_tenants
    nested = _in_savepoint(conn, a.id)
    changed = conn.execute(text("update tenant_data.orders set status = 'void'")).rowcount
    assert changed == 3
    nested.commit()
    nested = _in_savepoint(conn, b.id)
    statuses = conn.execute(text("select status from tenant_data.orders")).scalars().all()
    assert statuses and "void" not in statuses
    deleted = conn.execute(text("delete from tenant_data.orders")).rowcount
    assert deleted == 2
    nested.rollback()


def test_changing_tenant_id_to_another_tenant_is_rejected(conn, two_tenants):
    a, b = two_tenants
    nested = _in_savepoint(conn, a.id)
    with pytest.raises(ProgrammingError, match="row-level security"):
        conn.execute(text("update tenant_data.orders set tenant_id = :b"), {"b": b.id})
    nested.rollback()


def test_audit_events_are_append_only_for_the_app_role(conn):
    conn.execute(text(
        "insert into registry.audit_events (actor_kind, actor_label, action, details) "
        "values ('system', 'test', 'test.event', '{}')"
    ))
    for statement in ("update registry.audit_events set action = 'x'", "delete from registry.audit_events"):
        nested = conn.begin_nested()
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text(statement))
        nested.rollback()


def test_tenant_session_sees_only_its_tenant(app, two_tenants):
    a, b = two_tenants
    with tenant_context(a):
        with tenant_session() as session:
            customers = {o.customer for o in session.query(Order)}
    assert customers == {f"a-customer-{n}" for n in range(3)}


def test_pooled_connection_carries_no_tenant_into_next_transaction(app, servers):
    """Real commits on a one-connection pool: the tenant set by a tenant session's
    transaction is gone in the next transaction on the same pooled connection."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], pool_size=1, max_overflow=0)
    from portal.tenancy.placement import TenantSession, install_engine_hooks

    install_engine_hooks(engine)
    tenant_id = str(uuid.uuid4())
    try:
        with TenantSession(bind=engine, info={"tenant_id": tenant_id, "role": None}) as session:
            with session.begin():
                seen = session.execute(text("select current_setting('app.tenant_id', true)")).scalar()
                backend = session.execute(text("select pg_backend_pid()")).scalar()
        assert seen == tenant_id
        with engine.connect() as plain:
            assert plain.execute(text("select pg_backend_pid()")).scalar() == backend
            leftover = plain.execute(text("select current_setting('app.tenant_id', true)")).scalar()
            assert leftover in (None, "")
            assert plain.execute(text("select count(*) from tenant_data.orders")).scalar() == 0
        # A transaction begun but ended before any statement must not hand its tenant on.
        with TenantSession(bind=engine, info={"tenant_id": tenant_id, "role": None}) as session:
            session.begin()
            session.connection()
            session.rollback()
        with engine.connect() as plain:
            assert plain.execute(text("select current_setting('app.tenant_id', true)")).scalar() in (None, "")
    finally:
        engine.dispose()


def test_registry_session_has_no_tenant(conn, two_tenants):
    """A registry transaction says "no tenant" itself, even on a connection whose
    transaction last served a tenant (as the test's shared connection has)."""
    db.session.commit()
    assert db.session.execute(text("select count(*) from tenant_data.orders")).scalar() == 0


def test_malformed_tenant_setting_is_an_error_not_a_leak(conn, two_tenants):
    nested = conn.begin_nested()
    conn.execute(text("select set_config('app.tenant_id', 'not-a-uuid', true)"))
    with pytest.raises(DBAPIError):
        conn.execute(text("select count(*) from tenant_data.orders"))
    nested.rollback()


def test_streamed_and_batched_statements_carry_the_tenant_too(app, two_tenants):
    """Server-side cursors (yield_per) and executemany cannot take the set_config in the
    same round trip; they must still run under the tenant."""
    a, _ = two_tenants
    with tenant_context(a):
        with tenant_session() as session:
            streamed = session.execute(
                select(Order.customer).order_by(Order.number).execution_options(yield_per=1)).scalars().all()
        assert streamed == [f"a-customer-{n}" for n in range(3)]
        with tenant_session() as session, session.begin():
            session.execute(insert(Order), [
                {"tenant_id": a.id, "id": uuid.uuid4(), "number": 10 + n, "customer": "batch", "amount_cents": 1,
                 "status": "open"} for n in range(3)])
        with tenant_session() as session:
            assert session.execute(select(func.count()).select_from(Order)).scalar() == 6


def test_requests_run_under_the_plans_statement_timeout(app, factory):
    """Each transaction of a tenant request carries its plan's statement timeout (basic:
    5 s); jobs outside requests do not (the job timeout bounds them)."""
    tenant = factory.tenant(plan="basic")
    with app.test_request_context():
        with tenant_session(tenant) as session:
            assert session.execute(text("show statement_timeout")).scalar() == "5s"
    with tenant_session(tenant) as session:
        assert session.execute(text("show statement_timeout")).scalar() == "0"
