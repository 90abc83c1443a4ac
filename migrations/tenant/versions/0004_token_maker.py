"""Who made an API token: the tenant user whose rights the token stands in for.

Revision ID: t0004
Revises: t0003
Create Date: 2026-11-28

`created_by_id` is the maker's id in the tenant's `users` table, checked again on every
API request (portal/tokens/services.py): a token stops working when its maker is
disabled or removed, and loses the scopes its maker's role no longer allows.

NULL for tokens made before this revision (and for any made by the system rather than
a tenant user): those are not re-checked, as before. Deliberately no foreign key: an
`ON DELETE SET NULL` would turn a removed maker's token into an unchecked one, and
`CASCADE` would delete tokens silently instead of refusing them with a reason; a move
or an import also copies tables without having to order them.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "t0004"
down_revision = "t0003"
branch_labels = None
depends_on = None


def _schema():
    return op.get_context().version_table_schema


def upgrade():
    op.add_column("api_tokens", sa.Column("created_by_id", UUID(as_uuid=True), nullable=True), schema=_schema())


def downgrade():
    op.drop_column("api_tokens", "created_by_id", schema=_schema())
