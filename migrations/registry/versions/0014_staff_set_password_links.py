"""A staff member's set-password link in columns of its own, as a tenant user's.

Staff invitations first kept a pending link inside `staff_users.password_hash` as
`!link$<SHA-256 of the token>$<expiry, ISO 8601>` (so a used link could not be told from
an unknown one). Now `staff_users` has the columns `tenant_data.users` has:
`set_password_token_hash` (unique), `set_password_expires_at`, `set_password_used_at`,
and `password_hash` is NULL until the invitee sets a password (nullable, as a tenant
user's). The upgrade moves every pending `!link$...` value into the columns; the
downgrade writes each open link back (a member with no password and no open link gets
a link that expired long ago and that no token opens: "invitation expired", as before)
and makes `password_hash` NOT NULL again. A used link's hash is lost on the way down.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

S = "registry"
INDEX = "uq_staff_users_set_password_token_hash"
# What the first staff invitations wrote: `!link$` + 64 hex digits + `$` + the expiry.
PENDING = r"^!link\$[0-9a-f]{64}\$[^$]+$"


def upgrade():
    op.add_column("staff_users", sa.Column("set_password_token_hash", sa.String(64), nullable=True), schema=S)
    op.add_column("staff_users", sa.Column("set_password_expires_at", sa.DateTime(timezone=True), nullable=True),
                  schema=S)
    op.add_column("staff_users", sa.Column("set_password_used_at", sa.DateTime(timezone=True), nullable=True),
                  schema=S)
    op.create_index(INDEX, "staff_users", ["set_password_token_hash"], unique=True, schema=S)
    op.alter_column("staff_users", "password_hash", existing_type=sa.String(255), nullable=True, schema=S)
    op.execute(sa.text(
        f"UPDATE {S}.staff_users SET set_password_token_hash = split_part(password_hash, '$', 2), "
        f"set_password_expires_at = split_part(password_hash, '$', 3)::timestamptz, password_hash = NULL "
        f"WHERE password_hash ~ :pending").bindparams(pending=PENDING))


def downgrade():
    op.execute(sa.text(
        f"UPDATE {S}.staff_users SET password_hash = '!link$' || set_password_token_hash || '$' || "
        f"to_char(set_password_expires_at AT TIME ZONE 'UTC', :iso) || '+00:00' "
        f"WHERE password_hash IS NULL AND set_password_token_hash IS NOT NULL AND set_password_used_at IS NULL")
        .bindparams(iso='YYYY-MM-DD"T"HH24:MI:SS'))
    # A random digest (two md5s of random numbers: no token known to anybody hashes to it).
    op.execute(f"UPDATE {S}.staff_users SET password_hash = '!link$' || md5(random()::text) || "
               f"md5(random()::text) || '$1970-01-01T00:00:00+00:00' WHERE password_hash IS NULL")
    op.alter_column("staff_users", "password_hash", existing_type=sa.String(255), nullable=False, schema=S)
    op.drop_index(INDEX, table_name="staff_users", schema=S)
    op.drop_column("staff_users", "set_password_used_at", schema=S)
    op.drop_column("staff_users", "set_password_expires_at", schema=S)
    op.drop_column("staff_users", "set_password_token_hash", schema=S)
