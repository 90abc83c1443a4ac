"""Online tenant moves and maintenance mode.

- `tenant_moves`: a move of one tenant from its tier and placement to another, its state
  and figures, and the old copy it leaves behind (kept, not served, until dropped). At
  most one move of a tenant is under way (a partial unique index).
- `tenants.placement_version`: bumped when a move switches the tenant; every process
  compares it with the version in Redis on each request, so a switch is seen at once.
- `tenants.maintenance_reason`: set while staff hold the tenant in maintenance mode
  (reads go on, writes are refused with 503).
- jobs may end `cancelled` (a move cancelled before its switch).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S = "registry"
UNDER_WAY = "state in ('queued', 'copying', 'catching_up', 'frozen', 'validating')"


def upgrade():
    op.add_column("tenants", sa.Column("placement_version", sa.Integer, nullable=False, server_default="0"), schema=S)
    op.add_column("tenants", sa.Column("maintenance_reason", sa.Text, nullable=True), schema=S)
    op.create_table(
        "tenant_moves",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey(f"{S}.tenants.id", ondelete="CASCADE",
                                                                 name="fk_tenant_moves_tenant_id_tenants"),
                  nullable=False),
        sa.Column("from_tier", sa.String(16), nullable=False),
        sa.Column("from_placement_id", UUID(as_uuid=True), sa.ForeignKey(
            f"{S}.placements.id", name="fk_tenant_moves_from_placement_id_placements"), nullable=True),
        sa.Column("to_tier", sa.String(16), nullable=False),
        sa.Column("to_placement_id", UUID(as_uuid=True), sa.ForeignKey(
            f"{S}.placements.id", name="fk_tenant_moves_to_placement_id_placements"), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("job_id", UUID(as_uuid=True), nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("max_freeze_ms", sa.Integer, nullable=False),
        sa.Column("figures", JSONB, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("switched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        # The old copy: kept after the switch (not served) until drop_after, then dropped.
        sa.Column("drop_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dropped_at", sa.DateTime(timezone=True), nullable=True),
        schema=S,
    )
    op.create_check_constraint("ck_tenant_moves_state", "tenant_moves", "state in ('queued', 'copying', "
                               "'catching_up', 'frozen', 'validating', 'switched', 'cancelled', 'failed')", schema=S)
    op.drop_constraint("ck_jobs_state", "jobs", type_="check", schema=S)
    op.create_check_constraint("ck_jobs_state", "jobs", "state in ('queued', 'running', 'succeeded', 'failed', "
                               "'interrupted', 'cancelled')", schema=S)
    op.create_index("ix_tenant_moves_tenant_id_created_at", "tenant_moves", ["tenant_id", "created_at"], schema=S)
    op.create_index("uq_tenant_moves_under_way", "tenant_moves", ["tenant_id"], unique=True,
                    postgresql_where=sa.text(UNDER_WAY), schema=S)


def downgrade():
    op.drop_constraint("ck_jobs_state", "jobs", type_="check", schema=S)
    op.create_check_constraint("ck_jobs_state", "jobs", "state in ('queued', 'running', 'succeeded', 'failed', "
                               "'interrupted')", schema=S)
    op.drop_table("tenant_moves", schema=S)
    op.drop_column("tenants", "maintenance_reason", schema=S)
    op.drop_column("tenants", "placement_version", schema=S)
