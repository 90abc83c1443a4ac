"""Copying a tenant's rows in and out of its placement with PostgreSQL's COPY: the one
path shared by export, import and moves (every tier: the same tables, the same SQL).

- `copy_out` writes a table's rows of the session's tenant as CSV (a header, then one
  line a row, in primary-key order), without `tenant_id`: the text is the same whichever
  tenant holds the rows. `COPY (SELECT ...) TO STDOUT` runs under row-level security.
- `copy_in` reads such CSV into a temporary staging table (COPY FROM is not allowed on a
  table under row-level security), checks it, and inserts it with the session's tenant
  id, through the policies' WITH CHECK.
- `checksums` are the row count and an order-independent checksum of each table's rows
  of the tenant: the sum of each row's 64-bit hash (PostgreSQL's `hash_record_extended`
  of the row without `tenant_id`: each column hashed by its type, no text made — the
  hashes hash partitioning relies on, stable across servers and versions), as a decimal
  string. Equal on two placements, however the rows were ordered or written; additive, so
  a change of a few rows changes it by theirs: what an export's manifest records and a
  move validates (`row_hashes` gives single rows' hashes).

Values travel as PostgreSQL's own text (in UTC): a timestamp in year 1 or 9999, any
JSON, any text reads back exactly as it was written, which Python's types cannot promise.
"""
import hashlib
import uuid
from datetime import date

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.engine import Engine

from portal.tenancy.data import row_key
from portal.tenancy.placement import qualified_table


class ChecksumMismatch(Exception):
    """Rows read in do not match what was announced for them."""


def columns(table):
    """The columns of `table` that travel: all but tenant_id, in table order."""
    return [c.name for c in table.columns if c.name != "tenant_id"]


def snapshot(session):
    """Make the session's next transaction REPEATABLE READ, so that several tables are
    read as of one moment (a no-op when the session joins a transaction already open)."""
    if isinstance(session.get_bind(), Engine):
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _prepare(session):
    """Open the session's transaction on its tenant (the tenant setting rides with this
    first statement) with UTC for timestamp text; return its DBAPI connection."""
    session.execute(text("select set_config('TimeZone', 'UTC', true)"))
    return session.connection().connection.dbapi_connection


def _qualified(session, table):
    return qualified_table(session, table.name)


def _column_list(session, table):
    quote = session.get_bind().dialect.identifier_preparer.quote
    return ", ".join(quote(name) for name in columns(table))


def _hashed_list(session, table):
    """The column list for hash_record_extended: a bit string has no hash function, so it
    is hashed as its text ('0101…')."""
    quote = session.get_bind().dialect.identifier_preparer.quote
    return ", ".join(f"{quote(c.name)}::text AS {quote(c.name)}" if isinstance(c.type, BIT) else quote(c.name)
                     for c in table.columns if c.name != "tenant_id")


def _row_hash_sum(relation, column_list, where=""):
    return (f"select count(*), coalesce(sum(hash_record_extended(r, 0)::numeric), 0)::text "
            f"from (select {column_list} from {relation}{where}) r")


class _Hashing:
    """A file-like writer that hashes (SHA-256) what passes through it, passed on in
    blocks of BLOCK bytes: COPY writes a row at a time, and a compressed zip member, a
    hash or a file pays per call."""

    BLOCK = 1 << 16

    def __init__(self, out):
        self.out, self.digest, self.pending = out, hashlib.sha256(), bytearray()

    def write(self, data):
        self.pending += data.encode() if isinstance(data, str) else data
        if len(self.pending) >= self.BLOCK:
            self.flush()
        return len(data)

    def flush(self):
        if self.pending:
            self.digest.update(self.pending)
            self.out.write(self.pending)
            self.pending = bytearray()


def copy_out(session, table, out, keys=None):
    """Write the session's tenant's rows of `table` to `out` (binary file-like) as CSV
    (with `keys`, only the rows with those primary keys). Returns (rows, SHA-256 hex of
    the bytes written)."""
    dbapi = _prepare(session)
    column_list = _column_list(session, table)
    key = row_key(table)
    where = ""
    if keys is not None:
        with dbapi.cursor() as cursor:  # COPY takes no parameters: the list is quoted by psycopg2
            where = " WHERE " + _key_match(table, cursor.mogrify("%s", (list(keys),)).decode())
    sink = _Hashing(out)
    with dbapi.cursor() as cursor:
        cursor.copy_expert(f'COPY (SELECT {column_list} FROM {_qualified(session, table)}{where} ORDER BY "{key}") '
                           f"TO STDOUT WITH (FORMAT csv, HEADER true)", sink)
        rows = cursor.rowcount
    sink.flush()
    return rows, sink.digest.hexdigest()


def _key_match(table, array):
    """`<key> = ANY(<array>)`, the array cast to the key's type so that the primary key's
    index serves it."""
    key = row_key(table)
    element = {uuid.UUID: "uuid", date: "date"}.get(table.c[key].type.python_type, "text")
    return f'"{key}" = ANY(CAST({array} AS {element}[]))'


def checksums(session, tables):
    """{table name: (rows, checksum)} of the session's tenant's rows of `tables`, in one
    statement (one round trip, one snapshot)."""
    _prepare(session)
    parts = [f"SELECT '{t.name}' AS name, * FROM ({_row_hash_sum(_qualified(session, t), _hashed_list(session, t))}) s"
             for t in tables]
    return {name: (int(rows), total) for name, rows, total in session.execute(text(" UNION ALL ".join(parts)))}


def row_hashes(session, table, keys):
    """{key: hash} of the session's tenant's rows of `table` with those keys (a key with no
    row is absent)."""
    _prepare(session)
    rows = session.execute(text(
        f'SELECT "{row_key(table)}"::text, hash_record_extended(r, 0) FROM (SELECT {_hashed_list(session, table)} '
        f"FROM {_qualified(session, table)} WHERE {_key_match(table, ':keys')}) r"), {"keys": list(keys)})
    return dict(rows.all())


def copy_in(session, table, source, tenant_id, expected=None, replace_keys=None):
    """Insert CSV rows of `table` from `source` (binary file-like, as copy_out wrote it)
    as the session's tenant's (`tenant_id`). With `expected` ((rows, checksum)), the rows
    are checked before anything is inserted: ChecksumMismatch otherwise. With
    `replace_keys`, the rows with those keys are deleted first (a catch-up: a key whose
    row is gone from the source is gone here too). Returns the rows inserted."""
    dbapi = _prepare(session)
    column_list = _column_list(session, table)
    stage = f'"stage_{table.name}"'
    session.execute(text(f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS "
                         f"SELECT {column_list} FROM {_qualified(session, table)} WITH NO DATA"))
    with dbapi.cursor() as cursor:
        cursor.copy_expert(f"COPY {stage} ({column_list}) FROM STDIN WITH (FORMAT csv, HEADER true)", source,
                           size=_Hashing.BLOCK)
    if expected is not None:
        found = session.execute(text(_row_hash_sum(stage, _hashed_list(session, table)))).one()
        if (int(found[0]), found[1]) != (int(expected[0]), str(expected[1])):
            raise ChecksumMismatch(f"{table.name}: {found[0]} rows with checksum {found[1]}, "
                                   f"expected {expected[0]} rows with checksum {expected[1]}")
    if replace_keys:
        session.execute(text(f"DELETE FROM {_qualified(session, table)} WHERE {_key_match(table, ':keys')}"),
                        {"keys": list(replace_keys)})
    inserted = session.execute(text(
        f"INSERT INTO {_qualified(session, table)} (tenant_id, {column_list}) "
        f"SELECT CAST(:tenant_id AS uuid), {column_list} FROM {stage}"), {"tenant_id": str(tenant_id)}).rowcount
    session.execute(text(f"DROP TABLE {stage}"))
    return inserted
