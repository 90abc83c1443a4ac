"""Who made an API token: the tenant user whose rights the token stands in for.

Revision ID: t0004
Revises: t0003
Create Date: 2026-11-27

`created_by_id` is the maker's id in the tenant's `users` table, checked again on every
API request (portal/tokens/services.py): a token stops working when its maker is
disabled or removed, and loses the scopes its maker's role no longer allows.

Tokens made before this revision get their maker from `created_by`, the maker's email
(or "<staff> as <email>" for one made while impersonating). A token whose maker cannot
be found stays NULL, and a token with no maker is refused like a removed maker's.
Deliberately no foreign key: an
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
    s = _schema()
    op.add_column("api_tokens", sa.Column("created_by_id", UUID(as_uuid=True), nullable=True), schema=s)
    quote = op.get_bind().dialect.identifier_preparer.quote
    tokens, users = f"{quote(s)}.api_tokens", f"{quote(s)}.users"
    # Row-level security is forced on the owner too; this one cross-row fill needs to see
    # every tenant's rows of this schema (it joins only within a tenant).
    op.execute(f"ALTER TABLE {tokens} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {users} NO FORCE ROW LEVEL SECURITY")
    op.execute(
        f"UPDATE {tokens} t SET created_by_id = u.id FROM {users} u "
        f"WHERE u.tenant_id = t.tenant_id AND (t.created_by = u.email "
        f"OR right(t.created_by, length(u.email) + 4) = ' as ' || u.email)"
    )
    op.execute(f"ALTER TABLE {tokens} FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {users} FORCE ROW LEVEL SECURITY")


def downgrade():
    op.drop_column("api_tokens", "created_by_id", schema=_schema())
