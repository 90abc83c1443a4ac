"""A day's active users and a run of days' roll-ups, kept once worked out.

`event_spans` holds the roll-ups of aligned runs of 2, 4, … 64 days ORed together, so a
range's unique users OR a few runs' bitmaps instead of one a day; a run is worked out
the first time a range holds it, and an event landing in it deletes it.
`event_active_days` holds per tenant and UTC day the day's events and its users over 1, 7
and 30 days. The dashboard works a day out from the every-event roll-ups the first time it
shows it (ORing 30 days of bitmaps: what made a cold dashboard grow with a tenant's users)
and keeps it; an event landing in the 30 days a row counts deletes the row
(portal/analytics/events.py), so a kept row is always what the roll-ups give. Empty at
first: every day is worked out on its first showing.

Revision ID: t0008
Revises: t0007
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BIT, UUID

revision = "t0008"
down_revision = "t0007"
branch_labels = None
depends_on = None

CURRENT_TENANT = "(select nullif(current_setting('app.tenant_id', true), '')::uuid)"
CHUNK_BITS = 1024  # portal/tenancy/data.py has the same


def _schema():
    return op.get_context().version_table_schema


def upgrade():
    s = _schema()
    quote = op.get_bind().dialect.identifier_preparer.quote
    op.create_table(
        "event_active_days",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("dau", sa.Integer, nullable=False),
        sa.Column("wau", sa.Integer, nullable=False),
        sa.Column("mau", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "day", name="pk_event_active_days"),
        schema=s,
    )
    op.create_table(
        "event_spans",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("chunk", sa.Integer, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("users", BIT(CHUNK_BITS), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_event_spans"),
        schema=s,
    )
    op.create_index("ix_event_spans_tenant_first_day", "event_spans", ["tenant_id", "first_day"], schema=s)
    for table in ("event_active_days", "event_spans"):
        name = f"{quote(s)}.{quote(table)}"
        op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {name} "
                   f"USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})")


def downgrade():
    op.drop_table("event_spans", schema=_schema())
    op.drop_table("event_active_days", schema=_schema())
