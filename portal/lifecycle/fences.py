"""A fence around one tenant's rows where they live: PostgreSQL triggers that capture the
keys its writes change, and refuse its writes while it is frozen. The same mechanism
serves a move (capture, then a short freeze for the final catch-up) and maintenance mode
(frozen, no capture).

Why triggers, not logical decoding: the servers run with `wal_level = replica` (the
default), where logical decoding is not available, and a fence must work on every
placement as it is configured. The triggers fire for this tenant's rows only (a `WHEN`
clause compares `tenant_id`, so on the pool's shared tables another tenant's write pays
one comparison, not a function call).

The objects, in schema `portal_fence` of the database that holds the tenant's rows (the
registry's for pool and bridge, the tenant's own for silo), named by the tenant id:

- `state_<id>`: one row: `state` open | frozen | moved | maintenance, and `capturing`
  (in maintenance, sign-ins and sign-outs still write the `sessions` table);
- `changes_<id>`: (seq, tbl, key, at, xid) — the primary key of every row the tenant's
  writes touched since capture began (an update that changes a key logs both keys), and
  the writing transaction (so a mover can take the changes a snapshot of its sees);
- `guard_<id>()`: the trigger function (SECURITY DEFINER, owned by the database's owner,
  `search_path` pinned). Each write first takes `FOR SHARE` on the state row, so that
  freezing (an UPDATE of that row) waits for every write already in flight to end, and
  every write after it sees the freeze and fails with SQLSTATE PT503 (the portal answers
  503 with Retry-After);
- triggers `portal_fence_<id>_w` (INSERT, UPDATE) and `portal_fence_<id>_d` (DELETE) on
  each tenant table, AFTER ROW.

All DDL runs as the owner, one table per transaction, with a short lock timeout
(PORTAL_FENCE_LOCK_TIMEOUT_MS), retried (PORTAL_FENCE_ATTEMPTS): adding a trigger to a
shared pool table waits for that table's writes in flight, and must not queue the others
behind it for long; a table that stays busy is a refusal with nothing changed.

A move's freeze is also announced in Redis (`announce_freeze`, the tenant's `frozen`
key, with a TTL): every request reads that key with its rate-limit count, and a write
that finds it waits (`wait_while_frozen`, at most PORTAL_MOVE_HOLD_WRITES_MS) for the
switch, then goes to the tenant's new place. So a write during a freeze is held, not
refused; one already past that check when the freeze began, or held longer than that,
meets the fence and is refused (503).
"""
import logging
import time

import redis
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from portal.dbsetup import owner_engine
from portal.extensions import redis_holder
from portal.metrics import WRITE_HELD
from portal.services.errors import Refused
from portal.services.keys import frozen_key, placement_version_key
from portal.tenancy.data import TENANT_SCHEMA, TENANT_TABLES, row_key
from portal.tenancy.names import database_name, schema_name
from portal.tenancy.placement import placement_owner_url

log = logging.getLogger(__name__)

SCHEMA = "portal_fence"
REFUSED = "PT503"  # the SQLSTATE of a write refused by a fence
STATES = ("open", "frozen", "moved", "maintenance")


class Fence:
    """The fence of tenant `ref` (a TenantRef) where its rows are now (or where `ref`
    says: a TenantRef of another placement for a move's target)."""

    def __init__(self, ref, registry_url):
        self.ref = ref
        self.hex = ref.id.hex
        if ref.tier == "silo":
            self.url, self.database = placement_owner_url(ref.placement_env), database_name(ref.id)
        else:
            self.url, self.database = registry_url, None
        self.tables_schema = schema_name(ref.id) if ref.tier == "bridge" else TENANT_SCHEMA
        self.state_table = f'"{SCHEMA}"."state_{self.hex}"'
        self.changes_table = f'"{SCHEMA}"."changes_{self.hex}"'
        self.function = f'"{SCHEMA}"."guard_{self.hex}"'
        self._engine = None

    # -- connections ------------------------------------------------------------------
    @property
    def engine(self):
        if self._engine is None:
            self._engine = owner_engine(self.url, database=self.database)
        return self._engine

    def close(self):
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _ddl(self, work):
        """Run `work(conn)` in one owner transaction with a short lock timeout, retried
        while it times out; at the end Refused (the tenant's tables are busy)."""
        cfg = current_app.config
        for attempt in range(1, cfg["FENCE_ATTEMPTS"] + 1):
            try:
                with self.engine.begin() as conn:
                    conn.execute(text(f"SET LOCAL lock_timeout = {int(cfg['FENCE_LOCK_TIMEOUT_MS'])}"))
                    return work(conn)
            except OperationalError as exc:
                if "lock timeout" not in str(exc):
                    raise
                log.warning("fence of %s: lock timeout, attempt %d", self.ref.slug, attempt)
                time.sleep(0.1 * attempt)
        raise Refused(f"The tables of {self.ref.slug} stayed busy (a long transaction holds them): "
                      f"nothing was changed; try again in a moment.")

    # -- the fence ----------------------------------------------------------------------
    def install(self, state="open", capturing=True):
        """Put the fence up (idempotent): its tables and function, then its triggers, one
        table per transaction (a transaction locking several tables could deadlock with
        the tenants' own, which lock them in another order)."""
        tenant = str(self.ref.id)

        def objects(conn):
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
            conn.execute(text(f"REVOKE ALL ON SCHEMA \"{SCHEMA}\" FROM PUBLIC"))
            conn.execute(text(f"CREATE TABLE IF NOT EXISTS {self.state_table} "
                              "(state text NOT NULL, capturing boolean NOT NULL)"))
            conn.execute(text(f"DELETE FROM {self.state_table}"))
            conn.execute(text(f"INSERT INTO {self.state_table} VALUES (:s, :c)"), {"s": state, "c": capturing})
            conn.execute(text(f"CREATE TABLE IF NOT EXISTS {self.changes_table} (seq bigserial PRIMARY KEY, "
                              "tbl text NOT NULL, key text NOT NULL, "
                              "at timestamptz NOT NULL DEFAULT clock_timestamp(), "
                              "xid xid8 NOT NULL DEFAULT pg_current_xact_id())"))
            conn.execute(text(self._function_sql()))

        self._ddl(objects)
        for table in TENANT_TABLES:
            qualified, key = f'"{self.tables_schema}"."{table.name}"', row_key(table)

            def triggers(conn, qualified=qualified, key=key):
                for suffix, events, row in (("w", "INSERT OR UPDATE", "NEW"), ("d", "DELETE", "OLD")):
                    name = f'"portal_fence_{self.hex}_{suffix}"'
                    exists = conn.execute(text("select 1 from pg_trigger where tgname = :n and tgrelid = "
                                               "to_regclass(:t)"), {"n": name.strip('"'), "t": qualified}).first()
                    if not exists:  # (DROP TRIGGER would lock the table's readers out: not needed here)
                        conn.execute(text(
                            f"CREATE TRIGGER {name} AFTER {events} ON {qualified} FOR EACH ROW "
                            f"WHEN ({row}.tenant_id = '{tenant}'::uuid) EXECUTE FUNCTION {self.function}('{key}')"))

            self._ddl(triggers)

    def _function_sql(self):
        return f"""
            CREATE OR REPLACE FUNCTION {self.function}() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fence$
            DECLARE
              fence_state text;
              capture boolean;
              old_key text;
              new_key text;
            BEGIN
              SELECT state, capturing INTO fence_state, capture FROM {self.state_table} FOR SHARE;
              -- In maintenance people still sign in and out (their sessions), to read.
              IF fence_state IS DISTINCT FROM 'open'
                 AND NOT (fence_state = 'maintenance' AND TG_TABLE_NAME = 'sessions') THEN
                RAISE EXCEPTION 'tenant writes are refused: %', fence_state USING ERRCODE = '{REFUSED}';
              END IF;
              IF capture THEN
                IF TG_OP <> 'INSERT' THEN
                  old_key := to_jsonb(OLD) ->> TG_ARGV[0];
                  INSERT INTO {self.changes_table} (tbl, key) VALUES (TG_TABLE_NAME, old_key);
                END IF;
                IF TG_OP <> 'DELETE' THEN
                  new_key := to_jsonb(NEW) ->> TG_ARGV[0];
                  IF old_key IS DISTINCT FROM new_key THEN
                    INSERT INTO {self.changes_table} (tbl, key) VALUES (TG_TABLE_NAME, new_key);
                  END IF;
                END IF;
              END IF;
              RETURN NULL;
            END
            $fence$"""

    def set_state(self, state, capturing=None):
        """Change the fence's state. To `frozen` (or `maintenance`), the UPDATE waits for
        every write of the tenant in flight (they hold FOR SHARE on the row): once it
        returns, no write of the tenant is in flight and every later one is refused."""
        assert state in STATES
        if capturing is None:
            self._ddl(lambda conn: conn.execute(text(f"UPDATE {self.state_table} SET state = :s"), {"s": state}))
        else:
            self._ddl(lambda conn: conn.execute(text(f"UPDATE {self.state_table} SET state = :s, capturing = :c"),
                                                {"s": state, "c": capturing}))

    def state(self):
        """(state, capturing), or None where there is no fence."""
        with self.engine.connect() as conn:
            if conn.execute(text("select to_regclass(:t)"), {"t": f"{SCHEMA}.state_{self.hex}"}).scalar() is None:
                return None
            return tuple(conn.execute(text(f"SELECT state, capturing FROM {self.state_table}")).one())

    def take(self, limit=None, visible_in=None):
        """Captured changes, taken off the log (the caller replays them): [(table, key)],
        oldest first; at most `limit`; with `visible_in` (a pg_snapshot as text), only
        those a transaction with that snapshot sees. Taking rather than reading past a
        position: a change whose transaction began first may commit last, with a lower
        seq than one already read."""
        where = "WHERE pg_visible_in_snapshot(xid, CAST(:snap AS pg_snapshot))" if visible_in else ""
        chosen = f"SELECT seq FROM {self.changes_table} {where} ORDER BY seq" + (" LIMIT :limit" if limit else "")
        with self.engine.begin() as conn:
            return [(tbl, key) for _seq, tbl, key in sorted(conn.execute(text(
                f"DELETE FROM {self.changes_table} WHERE seq IN ({chosen}) RETURNING seq, tbl, key"),
                {"snap": visible_in, "limit": limit}).all())]

    def backlog(self):
        """(changes not yet replayed, seconds since the oldest of them was made)."""
        with self.engine.connect() as conn:
            count, oldest = conn.execute(text(
                f"SELECT count(*), extract(epoch from clock_timestamp() - min(at)) FROM {self.changes_table}")).one()
        return int(count), float(oldest or 0)

    def remove(self):
        """Take the fence down (idempotent): its triggers, one table per transaction (DROP
        TRIGGER takes the table's strongest lock, however briefly: one table at a time
        cannot deadlock with readers), then its function and tables."""
        def has_schema(conn):
            return conn.execute(text("select to_regnamespace(:s)"), {"s": SCHEMA}).scalar() is not None

        if not self._ddl(has_schema):
            return
        for table in TENANT_TABLES:
            qualified = f'"{self.tables_schema}"."{table.name}"'

            def drop(conn, qualified=qualified, table=table):
                if conn.execute(text("select to_regclass(:t)"), {"t": f"{self.tables_schema}.{table.name}"}).scalar():
                    for suffix in ("w", "d"):
                        conn.execute(text(f'DROP TRIGGER IF EXISTS "portal_fence_{self.hex}_{suffix}" ON {qualified}'))

            self._ddl(drop)

        def objects(conn):
            conn.execute(text(f"DROP FUNCTION IF EXISTS {self.function}()"))
            conn.execute(text(f"DROP TABLE IF EXISTS {self.changes_table}, {self.state_table}"))

        self._ddl(objects)


# -- the freeze, announced to requests ----------------------------------------------------
HOLD_POLL_SECONDS = 0.01


def announce_freeze(tenant_id, ttl_ms):
    """Tell every process that the tenant's writes are about to be frozen: its writes wait
    (`wait_while_frozen`) instead of being refused. The TTL bounds the wait should the
    mover die; the fence itself still refuses until the move is rolled back."""
    try:
        redis_holder.client.set(frozen_key(tenant_id), "1", px=ttl_ms)
    except redis.RedisError as exc:  # then writes are refused (503) rather than held
        log.warning("freeze of %s not announced: %s", tenant_id, exc)


def end_freeze(tenant_id):
    """The freeze is over (switched, lifted or undone): held writes go on. Idempotent."""
    try:
        redis_holder.client.delete(frozen_key(tenant_id))
    except redis.RedisError as exc:  # held writes go on at the key's TTL
        log.warning("end of the freeze of %s not announced: %s", tenant_id, exc)


def wait_while_frozen(tenant_id, max_ms):
    """Hold a write of a frozen tenant until its freeze ends, at most `max_ms`: the
    tenant's published placement version then (None if unknown), so the caller reloads
    a tenant a switch has moved."""
    began = time.monotonic()
    deadline = began + max_ms / 1000
    client = redis_holder.client
    try:
        while True:
            frozen, version = client.pipeline(transaction=False).exists(frozen_key(tenant_id)) \
                .get(placement_version_key(tenant_id)).execute()
            if not frozen or time.monotonic() >= deadline:
                return int(version) if version is not None else None
            time.sleep(HOLD_POLL_SECONDS)
    except redis.RedisError as exc:
        log.warning("hold of a write of %s ended: Redis unreachable: %s", tenant_id, exc)
        return None
    finally:
        WRITE_HELD.observe(time.monotonic() - began)
