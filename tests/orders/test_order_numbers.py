"""Order numbers are unique within a tenant: orders made at once each get the next number
(the unique index, and a tenant's new orders taken one at a time), another tenant's
numbering is its own, and tenant migration t0006 renumbers duplicates made before it."""
import threading
import uuid

from sqlalchemy import delete, select, text

from portal.dbsetup import migrate_schema, owner_engine
from portal.orders.services import create_order
from portal.tenancy.context import TenantRef, tenant_context
from portal.tenancy.data import Order
from portal.tenancy.placement import tenant_session, tenant_transaction

THREADS, EACH = 8, 5


def _pool_tenant():
    tenant_id = uuid.uuid4()
    return TenantRef(id=tenant_id, slug=f"on-{tenant_id.hex[:8]}", name="Numbers", status="active", tier="pool",
                     plan_code="basic", placement_env=None)


def test_orders_made_at_once_get_distinct_numbers_per_tenant(app):
    """Committed for real (other threads must see each other's orders): not `factory`."""
    tenants = [_pool_tenant(), _pool_tenant()]
    errors = []

    def make(ref):
        try:
            with app.app_context(), tenant_context(ref):
                for n in range(EACH):
                    create_order({"customer": f"c{n}", "amount_cents": 1})
        except Exception as exc:  # reported below: a thread's failure must fail the test
            errors.append(repr(exc))

    threads = [threading.Thread(target=make, args=(tenants[i % 2],)) for i in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        for ref in tenants:
            with app.app_context(), tenant_session(ref) as session:
                numbers = sorted(session.execute(select(Order.number)).scalars())
            assert numbers == list(range(1, THREADS // 2 * EACH + 1))  # each tenant from 1, none twice
    finally:
        for ref in tenants:
            with app.app_context(), tenant_transaction(ref) as session:
                session.execute(delete(Order))


def test_t0006_renumbers_duplicate_order_numbers(app):
    schema = f"tmig_{uuid.uuid4().hex[:10]}"
    a, b = uuid.uuid4(), uuid.uuid4()
    engine = owner_engine(app.config["DATABASE_URL"])
    rows = [(a, 1, "2026-01-01"), (a, 2, "2026-01-02"), (a, 2, "2026-01-03"), (a, 2, "2026-01-04"),
            (b, 1, "2026-01-01"), (b, 1, "2026-01-02")]
    try:
        with engine.begin() as conn:
            conn.execute(text(f'create schema "{schema}"'))
            assert migrate_schema(conn, schema, "t0005") == "t0005"
            conn.execute(text(f'alter table "{schema}".orders no force row level security'))
            for tenant, number, day in rows:
                conn.execute(text(f'insert into "{schema}".orders (tenant_id, id, number, customer, amount_cents, '
                                  "status, created_at) values (:t, :i, :n, :d, 1, 'open', :d)"),
                             {"t": tenant, "i": uuid.uuid4(), "n": number, "d": day})
            conn.execute(text(f'alter table "{schema}".orders force row level security'))
            assert migrate_schema(conn, schema, "t0006") == "t0006"
            conn.execute(text(f'alter table "{schema}".orders no force row level security'))
            found = conn.execute(text(f'select tenant_id, customer, number from "{schema}".orders')).all()
        numbered = {(tenant, day): number for tenant, day, number in found}
        # The oldest keeps its number; the others follow the tenant's highest, oldest first.
        assert [numbered[(a, d)] for d in ("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04")] == [1, 2, 3, 4]
        assert [numbered[(b, d)] for d in ("2026-01-01", "2026-01-02")] == [1, 2]
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'drop schema if exists "{schema}" cascade'))
        engine.dispose()
