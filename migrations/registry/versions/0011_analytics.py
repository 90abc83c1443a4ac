"""Analytics: how long each plan keeps events, the advanced reports feature, and each
tenant's events per day for the staff overview.

`tenant_activity_days` is kept by the ingest (portal/analytics/events.py) in the
registry, one row per tenant and UTC day, and `activity_days` one row per day (tenants
with an event, events): the cross-tenant charts read them without opening any tenant's
storage, in a few rows whatever the number of tenants.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

S = "registry"
RETENTION_DAYS = {"basic": 30, "professional": 365, "enterprise": 730}
ADVANCED_REPORTS = {"basic": False, "professional": False, "enterprise": True}


def upgrade():
    op.add_column("plans", sa.Column("event_retention_days", sa.Integer, nullable=False, server_default="365"),
                  schema=S)
    for code, days in RETENTION_DAYS.items():
        op.execute(sa.text(f"update {S}.plans set event_retention_days = :days where code = :code")
                   .bindparams(days=days, code=code))
    for code, on in ADVANCED_REPORTS.items():
        op.execute(sa.text(f"update {S}.plans set features = features || jsonb_build_object('advanced_reports', "
                           "cast(:on as boolean)) where code = :code").bindparams(on=on, code=code))
    op.create_table(
        "tenant_activity_days",
        sa.Column("tenant_id", UUID(as_uuid=True),
                  sa.ForeignKey(f"{S}.tenants.id", ondelete="CASCADE",
                                name="fk_tenant_activity_days_tenant_id_tenants"),
                  nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "day", name="pk_tenant_activity_days"),
        schema=S,
    )
    op.create_index("ix_tenant_activity_days_day", "tenant_activity_days", ["day"], schema=S)
    op.create_table(
        "activity_days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("tenants", sa.Integer, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        schema=S,
    )


def downgrade():
    op.drop_table("activity_days", schema=S)
    op.drop_table("tenant_activity_days", schema=S)
    op.execute(f"update {S}.plans set features = features - 'advanced_reports'")
    op.drop_column("plans", "event_retention_days", schema=S)
