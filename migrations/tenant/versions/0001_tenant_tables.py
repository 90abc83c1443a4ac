"""Tenant tables (users, orders, settings) with row-level security, ENABLE + FORCE.

Applied per placement: the schema comes from the migration context (the pool's
`tenant_data` today). Every table has `tenant_id` first in its key and indexes, and one
policy: rows are visible and writable only where `tenant_id` is the transaction's
`app.tenant_id`. `nullif(..., '')` because a setting reset at the end of a transaction
reads back as '' (not NULL) later in the same session: that must mean "no tenant"
(no rows), not a cast error.

Revision ID: t0001
Revises:
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "t0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("users", "orders", "settings")
CURRENT_TENANT = "(select nullif(current_setting('app.tenant_id', true), '')::uuid)"


def _schema():
    return op.get_context().version_table_schema


def upgrade():
    s = _schema()
    op.create_table(
        "users",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(120), nullable=False, server_default=""),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("set_password_token_hash", sa.String(64), nullable=True),
        sa.Column("set_password_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_users"),
        schema=s,
    )
    op.create_index("uq_users_tenant_email", "users", ["tenant_id", "email"], unique=True, schema=s)
    op.create_index("ix_users_tenant_token", "users", ["tenant_id", "set_password_token_hash"], schema=s)
    op.create_table(
        "orders",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("customer", sa.String(120), nullable=False),
        sa.Column("amount_cents", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_orders"),
        schema=s,
    )
    op.create_index("ix_orders_tenant_created", "orders", ["tenant_id", "created_at"], schema=s)
    op.create_table(
        "settings",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", JSONB, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_settings"),
        schema=s,
    )
    quote = op.get_bind().dialect.identifier_preparer.quote
    for table in TABLES:
        name = f"{quote(s)}.{quote(table)}"
        op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {name} "
            f"USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})"
        )


def downgrade():
    for table in reversed(TABLES):
        op.drop_table(table, schema=_schema())
