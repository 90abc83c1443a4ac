"""Quotas and Top consumers sorted by a figure in one query: a snapshot of every served
tenant's figures in the registry.

The figures live in Redis, per tenant (requests this minute, API calls and slow statements
today, users and storage as last measured). Sorting 10,000 tenants by one of them meant
reading every tenant's keys and sorting in Python on each page view. `tenant_figures`
holds them, with the pressure worked out against the limits in force, as of
`figure_snapshots.taken_at`: a page is one statement, sorted and cut by the database
(portal/quotas/figures.py refreshes it when a page finds it older than
CONSOLE_FIGURES_MAX_AGE_SECONDS).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

S = "registry"


def upgrade():
    op.create_table(
        "tenant_figures",
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey(f"{S}.tenants.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("users", sa.Integer, nullable=True),  # NULL: not measured lately
        sa.Column("storage_bytes", sa.BigInteger, nullable=True),
        sa.Column("api_today", sa.Integer, nullable=False),
        sa.Column("rpm", sa.Integer, nullable=False),
        sa.Column("slow_today", sa.Integer, nullable=False),
        sa.Column("pressure", sa.Float, nullable=False),  # the highest percent of a limit in force
        schema=S,
    )
    op.create_table(
        "figure_snapshots",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("took_ms", sa.Integer, nullable=False),
        schema=S,
    )


def downgrade():
    op.drop_table("figure_snapshots", schema=S)
    op.drop_table("tenant_figures", schema=S)
