"""Tenant users' sessions kept on the server, in the tenant's own tables (every tier,
under the same row-level security), and custom role keys that cannot be route words.

A sign-in is a row; the cookie carries a random secret of which only the SHA-256 is
kept. Sign-out, a password set or reset, disabling, removal and a role with fewer
rights delete rows in the same transaction as the change (portal/auth/sessions.py).
Because the rows are tenant rows, a tenant moved to another tier takes its sessions along.

A custom role once keyed `new` shadowed the new-role page (/roles/new); such a role gets
a key of the new form (r-<8 hex>), and its holders with it.

Revision ID: t0005
Revises: t0004
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "t0005"
down_revision = "t0004"
branch_labels = None
depends_on = None

CURRENT_TENANT = "(select nullif(current_setting('app.tenant_id', true), '')::uuid)"


def _schema():
    return op.get_context().version_table_schema


def upgrade():
    s = _schema()
    op.create_table(
        "sessions",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(200), nullable=True),
        sa.Column("impersonation_id", UUID(as_uuid=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id_hash", name="pk_sessions"),
        schema=s,
    )
    op.create_index("ix_sessions_tenant_user", "sessions", ["tenant_id", "user_id"], schema=s)
    quote = op.get_bind().dialect.identifier_preparer.quote
    name = f"{quote(s)}.{quote('sessions')}"
    op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {name} "
               f"USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})")
    # The owner is subject to the policies too (FORCE): lift them for this one statement
    # (the transaction is the migration's, so no other session sees the table unforced).
    roles, users = f"{quote(s)}.{quote('roles')}", f"{quote(s)}.{quote('users')}"
    for table in (roles, users):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"""
        WITH renamed AS (
          UPDATE {roles} SET key = 'r-' || left(md5(tenant_id::text || key), 8)
          WHERE key = 'new' RETURNING tenant_id, key
        )
        UPDATE {users} u SET role = r.key FROM renamed r WHERE u.tenant_id = r.tenant_id AND u.role = 'new'""")
    for table in (roles, users):
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade():
    op.drop_table("sessions", schema=_schema())
