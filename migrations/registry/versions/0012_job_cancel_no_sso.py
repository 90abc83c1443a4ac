"""Jobs that can be cancelled while they run; `sso` no longer sold.

- jobs.cancel_requested: staff asked a queued or running job to stop (an export checks it
  between tables, and undoes what it wrote; a queued one is not run). A job cancelled ends
  `cancelled` (a state 0009 allows already).
- The `sso` feature turned nothing on: it leaves every plan's features and every tenant's
  overrides, so the plan matrix sells nothing that is not there.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

S = "registry"
# What 0001 seeded, put back by a downgrade (overrides of sso are not: they are gone).
SSO_BEFORE = {"basic": False, "professional": False, "enterprise": True}


def upgrade():
    op.add_column("jobs", sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
                  schema=S)
    op.execute(sa.text(f"update {S}.plans set features = features - 'sso' where features ? 'sso'"))
    op.execute(sa.text(f"delete from {S}.tenant_overrides where key = 'feature:sso'"))


def downgrade():
    for code, on in SSO_BEFORE.items():
        op.execute(sa.text(f"update {S}.plans set features = features || jsonb_build_object('sso', "
                           "cast(:on as boolean)) where code = :code").bindparams(on=on, code=code))
    op.drop_column("jobs", "cancel_requested", schema=S)
