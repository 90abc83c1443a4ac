"""No write-only state and no plaintext secret at rest in the registry.

- `tenants.settings` held only the limits provisioning wrote for nobody to read (a
  tenant's own settings are rows of its `settings` table; its role's caps are settings of
  the portal, PORTAL_TENANT_ROLE_*).
- `jobs.secret` kept a new tenant's first set-password token in plain text until staff
  looked at the page; the first admin is now invited by mail (or the outbox), like any user.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

S = "registry"


def upgrade():
    op.drop_column("tenants", "settings", schema=S)
    op.drop_column("jobs", "secret", schema=S)


def downgrade():
    op.add_column("jobs", sa.Column("secret", sa.Text, nullable=True), schema=S)
    op.add_column("tenants", sa.Column("settings", JSONB, nullable=False, server_default="{}"), schema=S)
