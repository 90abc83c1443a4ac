"""Placements (PostgreSQL servers for silo tenants), a tenant's placement and tenant-schema
version, plans' default tiers, and upgrade runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "registry"


def upgrade():
    op.create_table(
        "placements",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False),
        # The environment variable holding the server's owner URL; NULL: the registry's.
        # Credentials never enter the registry.
        sa.Column("url_env", sa.String(128), nullable=True),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("name", name="uq_placements_name"),
        sa.CheckConstraint("capacity > 0", name="ck_placements_capacity"),
        schema=S,
    )
    op.add_column("tenants", sa.Column(
        "placement_id", UUID(as_uuid=True),
        sa.ForeignKey(f"{S}.placements.id", name="fk_tenants_placement_id_placements"), nullable=True), schema=S)
    op.add_column("tenants", sa.Column("schema_version", sa.String(32), nullable=True), schema=S)
    op.create_index("ix_tenants_placement_id", "tenants", ["placement_id"], schema=S)
    op.create_index("ix_tenants_tier_version", "tenants", ["tier", "schema_version"], schema=S)
    op.create_check_constraint(
        "ck_tenants_silo_placement", "tenants", "(tier = 'silo') = (placement_id is not null)", schema=S)
    op.execute(f"update {S}.plans set default_tier = 'bridge' where code = 'professional'")
    op.execute(f"update {S}.plans set default_tier = 'silo' where code = 'enterprise'")
    op.create_table(
        "upgrade_runs",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("started_by", sa.String(254), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),  # running | done | failed | interrupted
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("results", JSONB, nullable=False, server_default="[]"),
        schema=S,
    )


def downgrade():
    op.drop_table("upgrade_runs", schema=S)
    op.drop_constraint("ck_tenants_silo_placement", "tenants", schema=S)
    op.drop_index("ix_tenants_tier_version", "tenants", schema=S)
    op.drop_index("ix_tenants_placement_id", "tenants", schema=S)
    op.drop_column("tenants", "schema_version", schema=S)
    op.drop_column("tenants", "placement_id", schema=S)
    op.drop_table("placements", schema=S)
    op.execute(f"update {S}.plans set default_tier = 'pool'")
