"""Order numbers unique within a tenant, and found by an index.

Orders were numbered max(number) + 1 with no constraint: two orders made at once could
take the same number, and finding the max read every order of the tenant. Duplicates
already made keep the number on the oldest order; the others get numbers after the
tenant's highest, oldest first. Then a unique index on (tenant_id, number) guards the rule and serves
the max (portal/orders/services.py also serialises a tenant's new orders).

Revision ID: t0006
Revises: t0005
Create Date: 2026-11-30
"""
from alembic import op

revision = "t0006"
down_revision = "t0005"
branch_labels = None
depends_on = None


def _schema():
    return op.get_context().version_table_schema


def upgrade():
    s = _schema()
    quote = op.get_bind().dialect.identifier_preparer.quote
    orders = f"{quote(s)}.{quote('orders')}"
    # The owner is subject to the policies too (FORCE): lifted for this statement only
    # (the transaction is the migration's).
    op.execute(f"ALTER TABLE {orders} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"""
        WITH ranked AS (
          SELECT tenant_id, id, number, created_at,
                 row_number() OVER (PARTITION BY tenant_id, number ORDER BY created_at, id) AS nth
          FROM {orders}
        ), renumbered AS (
          SELECT r.tenant_id, r.id,
                 top.number + row_number() OVER (PARTITION BY r.tenant_id ORDER BY r.created_at, r.id) AS number
          FROM ranked r
          JOIN (SELECT tenant_id, max(number) AS number FROM {orders} GROUP BY tenant_id) top
            ON top.tenant_id = r.tenant_id
          WHERE r.nth > 1
        )
        UPDATE {orders} o SET number = n.number FROM renumbered n
        WHERE o.tenant_id = n.tenant_id AND o.id = n.id""")
    op.execute(f"ALTER TABLE {orders} FORCE ROW LEVEL SECURITY")
    op.create_index("ux_orders_tenant_number", "orders", ["tenant_id", "number"], unique=True, schema=s)


def downgrade():
    op.drop_index("ux_orders_tenant_number", "orders", schema=_schema())
