"""Tenant lifecycle states, session epochs, archives; jobs with progress.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "registry"
STATES = ("provisioning", "active", "suspended", "deprovisioning", "archived", "purged", "failed")


def upgrade():
    op.drop_constraint("ck_tenants_status", "tenants", schema=S)
    op.execute(f"update {S}.tenants set status = 'archived' where status = 'deleted'")
    op.create_check_constraint("ck_tenants_status", "tenants",
                               "status in (%s)" % ", ".join(f"'{s}'" for s in STATES), schema=S)
    # Bumped to end every session of the tenant (suspension, deprovisioning).
    op.add_column("tenants", sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"), schema=S)
    op.add_column("tenants", sa.Column("failed_step", sa.String(64), nullable=True), schema=S)
    op.add_column("tenants", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True), schema=S)
    op.add_column("tenants", sa.Column("purge_after", sa.DateTime(timezone=True), nullable=True), schema=S)
    op.add_column("tenants", sa.Column("export_path", sa.Text, nullable=True), schema=S)
    op.create_table(
        "jobs",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("steps", JSONB, nullable=False, server_default="[]"),
        sa.Column("percent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("log", JSONB, nullable=False, server_default="[]"),
        sa.Column("params", JSONB, nullable=False, server_default="{}"),
        sa.Column("result", JSONB, nullable=False, server_default="{}"),
        # Shown once (a set-password link), then cleared.
        sa.Column("secret", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state in ('queued', 'running', 'succeeded', 'failed', 'interrupted')", name="ck_jobs_state"),
        schema=S,
    )
    op.create_index("ix_jobs_tenant_created", "jobs", ["tenant_id", "created_at"], schema=S)
    op.create_index("ix_jobs_state", "jobs", ["state"], schema=S)


def downgrade():
    op.drop_table("jobs", schema=S)
    for column in ("export_path", "purge_after", "archived_at", "failed_step", "session_epoch"):
        op.drop_column("tenants", column, schema=S)
    op.drop_constraint("ck_tenants_status", "tenants", schema=S)
    op.create_check_constraint("ck_tenants_status", "tenants", "status in ('active', 'suspended', 'deleted')",
                               schema=S)
