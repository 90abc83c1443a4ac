"""The pool tier's RLS predicate is usable by an index.

A query of the application with no tenant filter of its own ("the latest 50 orders")
gets its filter from the policy alone. If that predicate could not be an index condition
(a cast on the column, a function that is not leakproof, ...), every tenant page would
scan the shared table: slow at any size, and only visible with real data. This is a plan
check, not a timing (bench/rls_tax.py measures the cost).
"""
from sqlalchemy import text

LATEST_ORDERS = "select * from tenant_data.orders order by created_at desc limit 50"
INDEXES = {"ix_orders_tenant_created", "ux_orders_tenant_number", "pk_orders"}


def plan_nodes(node):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def test_latest_orders_under_rls_use_a_tenant_index(conn, factory):
    mine, other = factory.tenant(), factory.tenant()
    for number in range(1, 4):
        factory.order(mine, number=number)
        factory.order(other, number=number)

    # `conn` is the application role's connection, inside the test's transaction:
    # the setting is local to it, as in placement.py.
    conn.execute(text("select set_config('app.tenant_id', :id, true)"), {"id": str(mine.id)})
    # With a handful of rows the tables fit in one page, and the planner rightly prefers
    # a sequential scan and a sort to any index: that plan says nothing about a large
    # table. enable_seqscan = off only penalises the sequential scan, so the plan shows
    # whether an index can serve the policy's predicate at all (if none could, the
    # planner would still fall back to a sequential scan, and the test would fail).
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    plan = conn.execute(text(f"EXPLAIN (FORMAT JSON) {LATEST_ORDERS}")).scalar_one()[0]["Plan"]

    index_scans = [
        node for node in plan_nodes(plan)
        if node.get("Index Name") in INDEXES and "tenant_id" in node.get("Index Cond", "")
    ]
    assert index_scans, f"no index scan with an Index Cond on tenant_id in the plan: {plan}"
    # (a Bitmap Index Scan names no relation; its index names are the orders table's)
    assert index_scans[0].get("Relation Name", "orders") == "orders"

    # And the policy alone filters: only this tenant's orders come back.
    rows = conn.execute(text(LATEST_ORDERS)).mappings().all()
    assert len(rows) == 3
    assert {row["tenant_id"] for row in rows} == {mine.id}
