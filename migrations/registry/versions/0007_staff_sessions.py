"""Staff sessions kept on the server: a sign-in is a row, and a session ends when its row goes.

The cookie carries a random session secret; only its SHA-256 is kept here. The console's
user loader accepts a staff cookie only while its row exists, has been used within the
idle timeout and is younger than the absolute lifetime (portal/auth/sessions.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

S = "registry"


def upgrade():
    op.create_table(
        "staff_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("staff_user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id_hash", name="pk_staff_sessions"),
        sa.ForeignKeyConstraint(["staff_user_id"], [f"{S}.staff_users.id"], ondelete="CASCADE",
                                name="fk_staff_sessions_staff_user_id_staff_users"),
        schema=S,
    )
    op.create_index("ix_staff_sessions_staff_user_id", "staff_sessions", ["staff_user_id"], schema=S)


def downgrade():
    op.drop_table("staff_sessions", schema=S)
