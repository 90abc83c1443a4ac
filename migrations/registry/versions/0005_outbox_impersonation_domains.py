"""The mail outbox, support impersonations, and verification of custom domains.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "registry"


def upgrade():
    op.create_table(
        "outbox",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey(f"{S}.tenants.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("to_address", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        schema=S,
    )
    op.create_index("ix_outbox_tenant_id", "outbox", ["tenant_id"], schema=S)
    op.create_table(
        "impersonations",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True), sa.ForeignKey(f"{S}.tenants.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("staff_user_id", UUID(as_uuid=True), sa.ForeignKey(f"{S}.staff_users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("staff_email", sa.String(254), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_email", sa.String(254), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ticket", sa.String(64), nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("write_reason", sa.Text, nullable=True),
        sa.Column("override_reason", sa.Text, nullable=True),
        sa.Column("handoff_hash", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_cause", sa.String(16), nullable=True),
        sa.Column("request_count", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint("minutes between 1 and 60", name="ck_impersonations_minutes"),
        schema=S,
    )
    op.create_index("ix_impersonations_tenant_id", "impersonations", ["tenant_id"], schema=S)
    op.create_index("ix_impersonations_staff_open", "impersonations", ["staff_user_id", "ended_at"], schema=S)
    op.add_column("tenant_domains", sa.Column("verification_token", sa.String(64), nullable=True), schema=S)
    op.add_column("tenant_domains", sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True), schema=S)
    op.add_column("tenant_domains", sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
                  schema=S)
    op.add_column("tenant_domains", sa.Column("last_check_error", sa.Text, nullable=True), schema=S)
    # Domains recorded so far were recorded by staff: verified by their word.
    op.execute(f"update {S}.tenant_domains set verified_at = created_at")


def downgrade():
    for column in ("last_check_error", "last_checked_at", "verified_at", "verification_token"):
        op.drop_column("tenant_domains", column, schema=S)
    op.drop_table("impersonations", schema=S)
    op.drop_table("outbox", schema=S)
