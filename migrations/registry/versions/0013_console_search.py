"""The staff console at 10,000 tenants: search by slug or name through an index, and
indexes for the tenant list's keyset pages.

- Search: trigram GIN indexes (pg_trgm) on `slug` and `lower(name)`, which serve
  `LIKE '%…%'` anywhere in the text. Creating the extension needs privileges this
  migration's role (the owner) may not have on every server: it is tried in a
  savepoint, and where it fails the fallback is btree indexes (text_pattern_ops) on
  `lower(slug)` and `lower(name)`, which serve prefix search (`LIKE '…%'`). The app
  finds out at run time which pair exists (portal/tenants/listing.py).
- Keyset pages (`after=<sort value, id>`): one btree per sort key with the id after it,
  so "the rows after this one" is an index range, the last page as cheap as the first.
  (Slug is unique and has its index already.)

The downgrade drops the indexes and leaves the extension (something else may use it).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

S = "registry"
TRIGRAM = ("ix_tenants_slug_trgm", "ix_tenants_name_trgm")
PREFIX = ("ix_tenants_slug_prefix", "ix_tenants_name_prefix")
KEYSET = {
    "ix_tenants_keyset_name": "lower(name), id",
    "ix_tenants_keyset_created": "created_at, id",
    "ix_tenants_keyset_plan": "plan_code, id",
    "ix_tenants_keyset_status": "status, id",
}


def trigram_schema(conn):
    """The schema pg_trgm lives in, creating it if it may (in a savepoint: a refusal
    leaves the migration's transaction as it was); None where it may not."""
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        savepoint.rollback()
    else:
        savepoint.commit()
    return conn.execute(sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'")).scalar_one_or_none()


def create_search_indexes(conn, trigram=True, schema=S):
    """The search indexes on `<schema>.tenants`: trigram where pg_trgm is there (or may be
    made), else the prefix fallback. Returns which: "trigram" or "prefix". (`schema` lets
    a test build them on a copy of the table, away from the registry's locks.)"""
    trgm_schema = trigram_schema(conn) if trigram else None
    table = f"{schema}.tenants"
    if trgm_schema is not None:
        ops = f'"{trgm_schema}".gin_trgm_ops'
        conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {TRIGRAM[0]} ON {table} USING gin (slug {ops})"))
        conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {TRIGRAM[1]} ON {table} USING gin (lower(name) {ops})"))
        return "trigram"
    conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {PREFIX[0]} ON {table} (lower(slug) text_pattern_ops)"))
    conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {PREFIX[1]} ON {table} (lower(name) text_pattern_ops)"))
    return "prefix"


def upgrade():
    conn = op.get_bind()
    create_search_indexes(conn)
    for name, columns in KEYSET.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {S}.tenants ({columns})")


def downgrade():
    for name in (*KEYSET, *TRIGRAM, *PREFIX):
        op.execute(f"DROP INDEX IF EXISTS {S}.{name}")
