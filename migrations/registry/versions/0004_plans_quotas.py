"""Plans' limits for noisy neighbours, per-tenant overrides, plan change requests.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "registry"
LIMITS = {  # plan: requests a minute, database connections, statement timeout (ms)
    "basic": (60, 5, 5000),
    "professional": (600, 10, 15000),
    "enterprise": (6000, 20, 30000),
}


def upgrade():
    op.add_column("plans", sa.Column("requests_per_minute", sa.Integer, nullable=False, server_default="60"), schema=S)
    op.add_column("plans", sa.Column("db_connections", sa.Integer, nullable=False, server_default="5"), schema=S)
    op.add_column("plans", sa.Column("statement_timeout_ms", sa.Integer, nullable=False, server_default="5000"),
                  schema=S)
    for code, (rpm, connections, timeout) in LIMITS.items():
        op.execute(sa.text(f"update {S}.plans set requests_per_minute = :r, db_connections = :c, "
                           "statement_timeout_ms = :t where code = :code")
                   .bindparams(r=rpm, c=connections, t=timeout, code=code))
    op.create_table(
        "tenant_overrides",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True),
                  sa.ForeignKey(f"{S}.tenants.id", ondelete="CASCADE", name="fk_tenant_overrides_tenant_id_tenants"),
                  nullable=False),
        # "feature:<name>" (value true/false) or "limit:<name>" (value a number, or null: unlimited)
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", JSONB, nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("tenant_id", "key", name="uq_tenant_overrides_tenant_id_key"),
        schema=S,
    )
    op.create_table(
        "plan_requests",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True),
                  sa.ForeignKey(f"{S}.tenants.id", ondelete="CASCADE", name="fk_plan_requests_tenant_id_tenants"),
                  nullable=False),
        sa.Column("from_plan", sa.String(32), nullable=False),
        sa.Column("to_plan", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(254), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),  # pending | approved | rejected
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("decided_by", sa.String(254), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        schema=S,
    )
    op.create_index("ix_plan_requests_state", "plan_requests", ["state", "created_at"], schema=S)


def downgrade():
    op.drop_table("plan_requests", schema=S)
    op.drop_table("tenant_overrides", schema=S)
    for column in ("statement_timeout_ms", "db_connections", "requests_per_minute"):
        op.drop_column("plans", column, schema=S)
