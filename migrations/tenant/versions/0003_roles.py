"""Custom roles, longer role keys on users, and when a set-password link was used.

Revision ID: t0003
Revises: t0002
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "t0003"
down_revision = "t0002"
branch_labels = None
depends_on = None

CURRENT_TENANT = "(select nullif(current_setting('app.tenant_id', true), '')::uuid)"


def _schema():
    return op.get_context().version_table_schema


def upgrade():
    s = _schema()
    op.create_table(
        "roles",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("permissions", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_roles"),
        schema=s,
    )
    op.alter_column("users", "role", type_=sa.String(40), existing_type=sa.String(16), schema=s)
    op.add_column("users", sa.Column("set_password_used_at", sa.DateTime(timezone=True), nullable=True), schema=s)
    quote = op.get_bind().dialect.identifier_preparer.quote
    name = f"{quote(s)}.{quote('roles')}"
    op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {name} "
               f"USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})")


def downgrade():
    s = _schema()
    op.drop_column("users", "set_password_used_at", schema=s)
    op.alter_column("users", "role", type_=sa.String(16), existing_type=sa.String(40), schema=s)
    op.drop_table("roles", schema=s)
