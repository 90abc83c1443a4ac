"""Analytics: who did an event, and daily roll-ups kept current on ingest.

`events.user_key` is the tenant user's id or an external id sent through the API.
`event_users` numbers a tenant's users 0, 1, 2, … in the order first seen; `event_rollups`
holds per day (UTC), event name (and '' for every name at once) and block of CHUNK_BITS
user numbers the number of events and a bitmap of the users who did it (bit n of block c:
user c * CHUNK_BITS + n). Unique users over any range are the set bits of the OR of its bitmaps: exact, and read from a
few rows a day instead of every event (portal/analytics/queries.py). Both are tenant
tables like any other: same row-level security, moved and exported with the tenant. The
roll-up's key is one column (day|block|name) because moves and exports track rows by one
key column beside tenant_id.

Events already stored get their roll-ups here (they had no user).

Revision ID: t0007
Revises: t0006
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BIT, UUID

revision = "t0007"
down_revision = "t0006"
branch_labels = None
depends_on = None

CURRENT_TENANT = "(select nullif(current_setting('app.tenant_id', true), '')::uuid)"
CHUNK_BITS = 1024  # portal/analytics/events.py has the same


def _schema():
    return op.get_context().version_table_schema


def upgrade():
    s = _schema()
    quote = op.get_bind().dialect.identifier_preparer.quote
    op.add_column("events", sa.Column("user_key", sa.String(120), nullable=True), schema=s)
    op.create_index("ix_events_tenant_name_occurred", "events", ["tenant_id", "name", "occurred_at"], schema=s)
    op.create_table(
        "event_users",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_key", sa.String(120), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("tenant_id", "user_key", name="pk_event_users"),
        schema=s,
    )
    op.create_index("ux_event_users_tenant_idx", "event_users", ["tenant_id", "idx"], unique=True, schema=s)
    op.create_table(
        "event_rollups",
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("chunk", sa.Integer, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("users", BIT(CHUNK_BITS), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_event_rollups"),
        schema=s,
    )
    op.create_index("ix_event_rollups_tenant_day", "event_rollups", ["tenant_id", "day"], schema=s)
    for table in ("event_users", "event_rollups"):
        name = f"{quote(s)}.{quote(table)}"
        op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {name} "
                   f"USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})")
    events, rollups = f"{quote(s)}.{quote('events')}", f"{quote(s)}.{quote('event_rollups')}"
    # The owner is subject to the policies too (FORCE): lifted for this statement only
    # (the transaction is the migration's).
    for table in (events, rollups):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    # Per day and name, and per day for every name at once (name '').
    op.execute(f"""
        INSERT INTO {rollups} (tenant_id, key, day, name, chunk, events, users)
        SELECT tenant_id, day || '|0|' || name, day, name, 0, events, repeat('0', {CHUNK_BITS})::bit({CHUNK_BITS})
        FROM (SELECT tenant_id, day, CASE WHEN grouping(name) = 1 THEN '' ELSE name END AS name, count(*) AS events
              FROM (SELECT tenant_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, name FROM {events}) e
              GROUP BY GROUPING SETS ((tenant_id, day, name), (tenant_id, day))) g""")
    for table in (events, rollups):
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade():
    s = _schema()
    op.drop_table("event_rollups", schema=s)
    op.drop_table("event_users", schema=s)
    op.drop_index("ix_events_tenant_name_occurred", "events", schema=s)
    op.drop_column("events", "user_key", schema=s)
