"""API tokens and analytics events, with the same row-level security as every tenant table.

Revision ID: t0002
Revises: t0001
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "t0002"
down_revision = "t0001"
branch_labels = None
depends_on = None

TABLES = ("api_tokens", "events")
CURRENT_TENANT = "(select nullif(current_setting('app.tenant_id', true), '')::uuid)"


def _schema():
    return op.get_context().version_table_schema


def upgrade():
    s = _schema()
    op.create_table(
        "api_tokens",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("scopes", JSONB, nullable=False),
        # sha256 of the secret: the secret itself is shown once and never stored.
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(8), nullable=False),
        sa.Column("created_by", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_api_tokens"),
        schema=s,
    )
    op.create_index("uq_api_tokens_tenant_secret", "api_tokens", ["tenant_id", "secret_hash"], unique=True, schema=s)
    op.create_table(
        "events",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("properties", JSONB, nullable=False, server_default="{}"),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_events"),
        schema=s,
    )
    op.create_index("ix_events_tenant_occurred", "events", ["tenant_id", "occurred_at"], schema=s)
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
