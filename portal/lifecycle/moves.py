"""Moving a tenant, online, to another tier or server: copy, catch up, validate, a short
write freeze, switch; the old copy kept (not served), then dropped.

The same code moves every pair (pool, bridge, silo on any placement): the tables are the
same in every tier, so the only tier-specific parts are where rows are read from and
written to (a TenantRef of each place) and how storage is made and dropped (storage.py).

Phases (a job; each a step the pages show live):

1. prepare — any old copy a previous move of the tenant left is dropped; the target's
   storage is made (a bridge schema, a silo database, the tenant's role there: none for
   the pool); a fence goes up around the tenant's rows at the source (fences.py): from
   now on every key its writes touch is captured.
2. copy — every table, in one REPEATABLE READ snapshot of the source, through COPY
   (copying.py), into the target. The tenant keeps working.
3. catch-up — captured keys are replayed in batches: each key's row is read from the
   source as it is now and written to the target (or deleted there), until few are left.
4. validate — writes going on: in one REPEATABLE READ snapshot S of the source, every
   table's row count and order-independent checksum (copying.checksums); the captured
   changes S sees are replayed from S, so that the target holds the rows as of S, and
   its counts and checksums must be equal. The work proportional to the tenant's size
   is done here, not in the freeze.
5. freeze — announced in Redis (the tenant's new writes wait for the switch: fences.py),
   then the fence refuses the tenant's writes (PT503: 503 with Retry-After) once the
   writes in flight have ended; the changes captured since S (few: a second's writes)
   are replayed and each of their rows compared on both sides (any other row is as it
   was at S: a change to it would have been captured). The frozen tables' counts and
   checksums follow from S's and those rows' (recorded in the figures). Reads go on.
6. switch — in one registry transaction the tenant gets its new tier and placement, its
   placement version goes up, and the move is `switched`; the source's fence turns
   `moved` (its writes stay refused); every process sees the new placement on its next
   request (the version is published to Redis). The freeze ends here.

Before the switch, a failure, a fault, a cancel (staff, or Ctrl-C of the CLI) or a killed
worker (rolled back when a worker starts) undoes everything: the fence comes down, the
target's copy is dropped; the tenant works on its source, untouched. If the freeze would
outlast `max_freeze_ms`, it is lifted and tried again after more catching up (three
times). After the switch the old copy is kept MOVE_KEEP_HOURS (default 24), then dropped
by a job; staff may drop it sooner, but not within MOVE_MIN_KEEP_SECONDS of the switch.
Identifiers are the tenant id's (tenancy/names.py): a tenant's role on a server serves
each of its tiers there, and is dropped only with the last. docs/lifecycle.md has the
whole story.
"""
import logging
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import func, select, text

from portal.dbsetup import tenant_head
from portal.extensions import db, redis_holder
from portal.lifecycle import copying, fences, storage
from portal.lifecycle.exports import delete_rows
from portal.lifecycle.fences import Fence
from portal.lifecycle.placements import choose_for_silo
from portal.lifecycle.saga import maybe_fail
from portal.metrics import MOVE_DURATION, MOVE_FREEZE
from portal.models import TENANT_TIERS, WITH_STORAGE, Job, Placement, Tenant, TenantMove
from portal.services import audit_events, jobqueue
from portal.services.errors import Refused
from portal.services.keys import placement_version_key
from portal.services.metering import measure_storage, remember_storage, storage_bytes
from portal.tenancy.context import TenantRef
from portal.tenancy.data import TENANT_TABLES
from portal.tenancy.lookup import forget_tenant
from portal.tenancy.placement import tenant_session, tenant_transaction

log = logging.getLogger(__name__)

PHASES = ["prepare", "copy", "catch-up", "validate", "freeze", "switch"]
BATCH = 5000  # captured keys replayed at a time
FREEZE_BELOW = 200  # catch up until a round leaves fewer keys than this, then freeze
FREEZE_ATTEMPTS = 3
# Between announcing the freeze (new writes wait) and freezing: a write already past its
# check gets this long to reach the database and end there (accepted, captured) rather
# than meet the fence and be refused. Part of the freeze.
ANNOUNCE_LEAD_SECONDS = 0.05
SPOOL_BYTES = 64 << 20  # a table's CSV is held in memory up to this, then on disk
MOVED_TABLES = TENANT_TABLES  # every table moves, tokens and sessions too (people stay signed in)


class MoveAborted(Exception):
    """The move stops before its switch; everything it made is undone."""


class MoveCancelled(MoveAborted):
    pass


def _now():
    return datetime.now(timezone.utc)


# -- asking for a move -------------------------------------------------------------------
def under_way(tenant_id):
    return db.session.execute(select(TenantMove).where(
        TenantMove.tenant_id == tenant_id, TenantMove.state.in_(("queued", "copying", "catching_up", "frozen",
                                                                 "validating")))).scalar_one_or_none()


def moves_of(tenant_id, limit=10):
    return db.session.execute(select(TenantMove).where(TenantMove.tenant_id == tenant_id)
                              .order_by(TenantMove.created_at.desc()).limit(limit)).scalars().all()


def what_moves(tenant):
    """What a move of `tenant` would copy: {table: rows}, bytes, and an estimate in seconds
    (at the rate this portal's moves have copied, else a cautious 20,000 rows/s)."""
    ref = TenantRef.of(tenant)
    with tenant_session(ref) as session:
        rows = {t.name: session.execute(select(func.count()).select_from(t)).scalar_one() for t in MOVED_TABLES}
    rates = [m.figures.get("copy_rows_per_second") for m in db.session.execute(
        select(TenantMove).where(TenantMove.state == "switched").order_by(TenantMove.created_at.desc()).limit(5)
    ).scalars() if m.figures.get("copy_rows_per_second")]
    rate = sum(rates) / len(rates) if rates else 20_000
    return {"tables": rows, "rows": sum(rows.values()), "bytes": storage_bytes(ref),
            "estimate_seconds": round(2 + sum(rows.values()) / rate, 1)}


def check_move(tenant, to_tier, to_placement_id=None, max_freeze_ms=None):
    """The target placement (or None) and the longest freeze of a move of `tenant` there;
    Refused with the reason: a tenant not active or suspended, in maintenance, behind the
    tenant schema history, already moving, or already there; a bad target."""
    if to_tier not in TENANT_TIERS:
        raise Refused("Choose pool, bridge or silo.", "tier")
    if tenant.status not in WITH_STORAGE:
        raise Refused(f"Only an active or suspended tenant can be moved; this one is {tenant.status}.")
    if tenant.maintenance_reason:
        raise Refused("The tenant is in maintenance mode: end it before moving the tenant.")
    running = under_way(tenant.id)
    if running is not None:
        raise Refused(f"A move of {tenant.slug} to {running.to_tier} is already under way; wait for it or "
                      f"cancel it.")
    for kept in kept_old_copies(tenant.id):  # a move drops them first: not sooner than they may go
        if _now() < droppable_from(kept):
            raise Refused(f"{tenant.slug} moved moments ago; its old copy stays fenced until "
                          f"{droppable_from(kept):%H:%M:%S} UTC, and a new move can start then.")
    if tenant.schema_version != tenant_head():
        raise Refused(f"The tenant's tables are at {tenant.schema_version or 'an unknown version'}, not "
                      f"{tenant_head()}: upgrade the tenant first.")
    placement = None
    if to_tier == "silo":
        placement = choose_for_silo(to_placement_id)
    elif to_placement_id:
        raise Refused("Only silo tenants are placed on a server of their own.", "placement")
    if to_tier == tenant.tier and (placement.id if placement else None) == tenant.placement_id:
        raise Refused(f"{tenant.slug} is already there.", "tier")
    if to_tier == "silo" and tenant.tier == "silo" and \
            storage.server_of("silo", placement.url_env) == storage.server_of("silo", tenant.placement.url_env):
        raise Refused(f"Placement {placement.name} is on the server the tenant is on already.", "placement")
    max_freeze_ms = current_app.config["MOVE_MAX_FREEZE_MS"] if max_freeze_ms is None else max_freeze_ms
    if not isinstance(max_freeze_ms, int) or not 50 <= max_freeze_ms <= 60_000:
        raise Refused("The longest freeze is from 50 to 60,000 ms.", "max_freeze_ms")
    return placement, max_freeze_ms


def request_move(tenant, to_tier, to_placement_id=None, actor=None, max_freeze_ms=None):
    """Record a move of `tenant` (committed; the caller enqueues its job); Refused as
    check_move says, recording nothing."""
    placement, max_freeze_ms = check_move(tenant, to_tier, to_placement_id, max_freeze_ms)
    label = audit_events.actor_label(actor)
    move = TenantMove(tenant_id=tenant.id, from_tier=tenant.tier, from_placement_id=tenant.placement_id,
                      to_tier=to_tier, to_placement_id=placement.id if placement else None, state="queued",
                      max_freeze_ms=max_freeze_ms, figures={}, created_by=label)
    db.session.add(move)
    db.session.flush()
    job = jobqueue.create("move", tenant.id, PHASES, label, params={"move": str(move.id)})
    move.job_id = job.id
    audit_events.record("tenant.move_requested", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                        details={"move": str(move.id), "from": _where(tenant.tier, tenant.placement),
                                 "to": _where(to_tier, placement), "max_freeze_ms": max_freeze_ms})
    db.session.commit()
    return move, job


def _where(tier, placement):
    return f"{tier} on {placement.name}" if placement is not None else tier


def cancel(move, actor=None):
    """Ask a move under way to stop before its switch (it undoes what it made)."""
    if not move.under_way or move.state == "frozen":
        raise Refused("Only a move that has not begun to switch can be cancelled.")
    move.cancel_requested = True
    audit_events.record("tenant.move_cancel_requested", actor=actor, tenant_id=move.tenant_id,
                        details={"move": str(move.id)})
    db.session.commit()


# -- the job -------------------------------------------------------------------------------
def run(job, progress):
    """The worker's half of a move (job kind "move")."""
    move = db.session.get(TenantMove, job.params["move"])
    if move.state != "queued":  # delivered again after its worker died: roll it back
        Mover(move, progress).undo(f"the worker running it stopped during {move.state}")
        progress.finish("failed", error="interrupted: the move was rolled back; the tenant is where it was")
        return
    Mover(move, progress).run()


class Mover:
    def __init__(self, move, progress=None):
        self.move = move
        self.progress = progress
        self.tenant = db.session.get(Tenant, move.tenant_id)
        ref = TenantRef.of(self.tenant)
        from_env = move.from_placement.url_env or "" if move.from_placement is not None else None
        to_env = move.to_placement.url_env or "" if move.to_placement is not None else None
        self.source = ref.placed(move.from_tier, from_env)
        self.target = ref.placed(move.to_tier, to_env)
        self.fence = Fence(self.source, current_app.config["DATABASE_URL"])
        self.figures = dict(move.figures or {})
        self.sums_at_validation = {}  # {table name: (rows, checksum)} of the source at validation
        self.target_storage = None  # bytes, measured at validation (the cache's value at the switch)
        self.schema_version = tenant_head()  # (read from the migration files: not in the freeze)

    # -- driving -----------------------------------------------------------------------
    def run(self):
        started = time.perf_counter()
        try:
            for phase, do in (("prepare", self.prepare), ("copy", self.copy), ("catch-up", self.catch_up),
                              ("validate", self.validate_freeze_switch)):
                self._phase(phase, do)
        except MoveAborted as stop:
            MOVE_DURATION.labels("cancelled" if isinstance(stop, MoveCancelled) else "failed").observe(
                time.perf_counter() - started)
            self.undo(str(stop), cancelled=isinstance(stop, MoveCancelled))
            self.progress.finish("cancelled" if isinstance(stop, MoveCancelled) else "failed", error=str(stop))
            return
        except KeyboardInterrupt:  # Ctrl-C of `tenants move`: a cancel
            db.session.rollback()
            self.undo("interrupted (Ctrl-C): the tenant stays where it was", cancelled=True)
            self.progress.finish("cancelled", error="interrupted (Ctrl-C)")
            raise
        except Exception as exc:
            message = str(getattr(exc, "orig", exc)).strip().splitlines()[0] or type(exc).__name__
            log.exception("move of %s failed", self.tenant.slug)
            MOVE_DURATION.labels("failed").observe(time.perf_counter() - started)
            db.session.rollback()
            self.undo(message)
            self.progress.finish("failed", error=message)
            return
        finally:
            self.fence.close()
        self.figures["total_seconds"] = round(time.perf_counter() - started, 3)
        MOVE_DURATION.labels("switched").observe(time.perf_counter() - started)
        self._save(figures=self.figures)
        self.progress.finish("succeeded", move=str(self.move.id), **self.figures)

    def _phase(self, name, do):
        self._step(name, "running")
        maybe_fail(name, self.tenant.slug)
        self._check_cancel()
        do()
        if name != "validate":  # validate_freeze_switch reports its steps itself
            self._step(name, "done")

    def _step(self, name, state):
        if self.progress is not None:
            self.progress.step(name, state)

    def _save(self, **values):
        for name, value in values.items():
            setattr(self.move, name, value)
        db.session.commit()

    def _check_cancel(self):
        db.session.refresh(self.move, ["cancel_requested"])
        if self.move.cancel_requested:
            raise MoveCancelled("cancelled before the switch: the tenant stays where it was")

    # -- phases --------------------------------------------------------------------------
    def prepare(self):
        drop_old_copies(self.tenant.id)  # a previous move's: stale, and it could be where we go
        self.figures["role_existed"] = storage.role_exists(self.tenant.id, self.move.to_tier,
                                                           self.target.placement_env)
        self._save(state="copying", figures=self.figures)
        if self.move.to_tier == "pool":
            delete_rows(self.tenant, self.target)  # none should be there: make sure
        else:
            storage.make_storage(self.tenant.id, self.move.to_tier, self.target.placement_env)
            storage.make_role(self.tenant.id, self.move.to_tier, self.target.placement_env)
            cfg = current_app.config
            storage.set_role_limits(self.tenant.id, self.move.to_tier, self.target.placement_env,
                                    cfg["TENANT_ROLE_CONNECTIONS"], cfg["TENANT_ROLE_STATEMENT_TIMEOUT_MS"])
        self.fence.install(state="open", capturing=True)

    def copy(self):
        started, total = time.perf_counter(), 0
        tables = {}
        with tenant_session(self.source) as source:
            copying.snapshot(source)
            for n, table in enumerate(MOVED_TABLES):
                table_started = time.perf_counter()
                with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
                    rows, _ = copying.copy_out(source, table, spool)
                    spool.seek(0)
                    with tenant_transaction(self.target) as target:
                        copying.copy_in(target, table, spool, self.tenant.id)
                seconds = time.perf_counter() - table_started
                tables[table.name] = {"rows": rows, "seconds": round(seconds, 3),
                                      "rows_per_second": round(rows / seconds) if seconds else None}
                total += rows
                self.figures.update(tables=tables, copied_rows=total)
                if self.progress is not None:
                    self.progress.fraction("copy", (n + 1) / len(MOVED_TABLES))
                self._check_cancel()
        seconds = time.perf_counter() - started
        self.figures.update(copy_seconds=round(seconds, 3),
                            copy_rows_per_second=round(total / seconds) if seconds else None)
        self._save(state="catching_up", figures=self.figures)

    def catch_up(self):
        rounds = 0
        while True:
            replayed = self._replay(self.fence.take(BATCH))
            behind, lag = self.fence.backlog()
            rounds += 1
            self.figures.update(catch_up_rounds=rounds, behind_rows=behind, behind_seconds=round(lag, 3))
            self._save(figures=self.figures)
            self._check_cancel()
            if replayed < FREEZE_BELOW and behind < FREEZE_BELOW:
                return

    def validate_freeze_switch(self):
        """Validate (the whole tables, writes going on), freeze, replay and check the last
        changes, switch; lift the freeze, catch up and validate again if it would last
        longer than the move's max_freeze_ms."""
        # While frozen, nothing is written to the registry but what must be (the switch):
        # each commit there is time the tenant's writes wait.
        for attempt in range(1, FREEZE_ATTEMPTS + 1):
            self._save(state="validating")
            differences = self.validate()
            if differences:
                raise MoveAborted("validation failed: " + "; ".join(differences))
            self._step("validate", "done")
            self._check_cancel()
            self._step("freeze", "running")
            self._save(state="frozen")
            frozen_at = time.perf_counter()
            fences.announce_freeze(self.tenant.id, self.move.max_freeze_ms + 1000)  # writes wait from now
            time.sleep(ANNOUNCE_LEAD_SECONDS)
            self.fence.set_state("frozen")  # waits for the tenant's writes in flight
            waited = time.perf_counter()
            maybe_fail("freeze", self.tenant.slug)
            differences = self.check_last(self.fence.take())
            if differences:
                raise MoveAborted("validation failed: " + "; ".join(differences))
            checked = time.perf_counter()
            self.figures["freeze_parts_ms"] = {"announce_and_wait_for_writes": round((waited - frozen_at) * 1000, 1),
                                               "last_changes": round((checked - waited) * 1000, 1)}
            if (checked - frozen_at) * 1000 <= self.move.max_freeze_ms or attempt == FREEZE_ATTEMPTS:
                maybe_fail("switch", self.tenant.slug)
                self.switch(frozen_at, attempt)
                for step in ("freeze", "switch"):  # (reported after: each report is a registry commit)
                    self._step(step, "done")
                return
            log.warning("move of %s: the freeze took %.0f ms (at most %d): lifting it, catching up again",
                        self.tenant.slug, (checked - frozen_at) * 1000, self.move.max_freeze_ms)
            self.fence.set_state("open")
            fences.end_freeze(self.tenant.id)
            self._save(state="catching_up")
            self._step("validate", "running")
            self.catch_up()

    def _replay(self, changes, source=None):
        """Write the rows of `changes` ([(table, key)]) to the target as the source has
        them (in `source`'s snapshot, else a new one), or delete them there; returns how
        many changes."""
        if not changes:
            return 0
        with ExitStack() as stack:
            if source is None:
                source = stack.enter_context(tenant_session(self.source))
                copying.snapshot(source)
            target = stack.enter_context(tenant_transaction(self.target))
            for table, keys in _by_table(changes).items():
                with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
                    copying.copy_out(source, table, spool, keys=keys)
                    spool.seek(0)
                    copying.copy_in(target, table, spool, self.tenant.id, replace_keys=keys)
        self.figures["replayed_changes"] = self.figures.get("replayed_changes", 0) + len(changes)
        return len(changes)

    def validate(self):
        """Every table, writes going on: in one REPEATABLE READ snapshot S of the source,
        its (rows, checksum); the changes S sees replayed from S, so that the target holds
        the rows as of S; the target's (rows, checksum) (read at once, in a thread). The
        differences, in words; the sums kept for the freeze's figures."""
        app = current_app._get_current_object()
        target_sums = {}

        def read_target():
            with app.app_context(), tenant_session(self.target) as session:
                target_sums.update(copying.checksums(session, MOVED_TABLES))

        with tenant_session(self.source) as source:
            copying.snapshot(source)
            snap = source.execute(text("select pg_current_snapshot()::text")).scalar_one()
            self._replay(self.fence.take(visible_in=snap), source)
            reader = threading.Thread(target=read_target)
            reader.start()
            try:
                source_sums = copying.checksums(source, MOVED_TABLES)
            finally:
                reader.join()
        if not target_sums:
            raise MoveAborted("validation failed: the target's checksums could not be read")
        self.target_storage = self.figures["target_bytes"] = measure_storage(self.target)
        self.sums_at_validation = source_sums
        return _differences(source_sums, target_sums)

    def check_last(self, changes):
        """While frozen: `changes`, the last, replayed from the source and their rows
        compared one by one (the other rows are as validated: any change to one was
        captured). The frozen tables' figures derived from the validated sums."""
        with tenant_session(self.source) as source, tenant_session(self.target) as target:
            before = {table: copying.row_hashes(target, table, keys)
                      for table, keys in _by_table(changes).items()}
            self._replay(changes, source)
            differences, sums = [], dict(self.sums_at_validation)
            for table, keys in _by_table(changes).items():
                now_source, now_target = (copying.row_hashes(source, table, keys),
                                          copying.row_hashes(target, table, keys))
                if now_source != now_target:
                    differ = sorted(k for k in keys if now_source.get(k) != now_target.get(k))
                    differences.append(f"{table.name}: {len(differ)} changed rows differ ({', '.join(differ[:3])})")
                rows, total = sums[table.name]
                sums[table.name] = (rows - len(before[table]) + len(now_source),
                                    str(int(total) - sum(before[table].values()) + sum(now_source.values())))
        self.figures["checksums"] = {name: {"rows": rows, "checksum": checksum} for name, (rows, checksum)
                                     in sums.items()}
        return differences

    def switch(self, frozen_at, attempts):
        tenant, move = self.tenant, self.move
        db.session.refresh(tenant)
        tenant.tier, tenant.placement_id = move.to_tier, move.to_placement_id
        tenant.schema_version = self.schema_version
        tenant.placement_version = (tenant.placement_version or 0) + 1
        now = _now()
        move.state, move.switched_at, move.finished_at = "switched", now, now
        move.drop_after = now + max(timedelta(hours=current_app.config["MOVE_KEEP_HOURS"]),
                                    timedelta(seconds=current_app.config["MOVE_MIN_KEEP_SECONDS"]))
        self.figures.update(freeze_ms=round((time.perf_counter() - frozen_at) * 1000, 1), freeze_attempts=attempts)
        move.figures = self.figures
        audit_events.record("tenant.moved", actor=("system", None, move.created_by), tenant_id=tenant.id,
                            target=tenant.slug, details={"move": str(move.id),
                                                         "from": _where(move.from_tier, move.from_placement),
                                                         "to": _where(move.to_tier, move.to_placement),
                                                         **{k: self.figures.get(k) for k in (
                                                             "copied_rows", "copy_seconds", "freeze_ms",
                                                             "replayed_changes")}})
        db.session.commit()  # the point of no return: the target is the tenant's now
        publish(tenant, self.target_storage)  # the tenant's next request goes to the new place
        fences.end_freeze(tenant.id)  # and the writes held meanwhile go there: the freeze ends here
        self.figures["freeze_ms"] = round((time.perf_counter() - frozen_at) * 1000, 1)
        MOVE_FREEZE.observe(self.figures["freeze_ms"] / 1000)
        self.figures["freeze_parts_ms"]["switch"] = round(
            self.figures["freeze_ms"] - sum(self.figures["freeze_parts_ms"].values()), 1)
        try:
            self.fence.set_state("moved")  # the old copy refuses writes of a request that began before
            move.figures = dict(self.figures)
            drop_job = jobqueue.create("drop old copy", tenant.id, ["drop old copy"], move.created_by,
                                       params={"move": str(move.id)})
            db.session.commit()
            jobqueue.enqueue_at(drop_job, move.drop_after)
        except Exception:  # the move is done; the old copy stays fenced ("frozen") until staff drop it
            db.session.rollback()
            log.exception("move of %s switched, but its old copy's retention was not scheduled", tenant.slug)

    # -- undo ---------------------------------------------------------------------------
    def undo(self, reason, cancelled=False):
        """Everything the move made, undone: the fence down (the source is the tenant's
        again, writes and all), the target's copy dropped. Idempotent. Never after the
        switch: the target is the tenant's then."""
        db.session.rollback()
        db.session.refresh(self.move)
        if self.move.state == "switched":
            log.error("move of %s: not undone (%s): it has switched", self.tenant.slug, reason)
            return
        try:
            self.fence.remove()
        finally:
            self.fence.close()
            fences.end_freeze(self.tenant.id)
        _drop_copy(self.tenant, self.target, keep_role=self.figures.get("role_existed", True))
        self.move.state = "cancelled" if cancelled else "failed"
        self.move.error, self.move.finished_at, self.move.figures = reason, _now(), self.figures
        audit_events.record("tenant.move_cancelled" if cancelled else "tenant.move_failed",
                            actor=("system", None, self.move.created_by), tenant_id=self.tenant.id,
                            target=self.tenant.slug, reason=reason[:2000], details={"move": str(self.move.id)})
        db.session.commit()


def _by_table(changes):
    """[(table name, key)] as {table: {keys}}."""
    tables = {t.name: t for t in MOVED_TABLES}
    keys = defaultdict(set)
    for name, key in changes:
        keys[tables[name]].add(key)
    return keys


def _differences(source_sums, target_sums):
    return [f"{name}: source {source_sums[name][0]} rows ({source_sums[name][1]}), "
            f"target {target_sums[name][0]} rows ({target_sums[name][1]})"
            for name in source_sums if source_sums[name] != target_sums.get(name)]


# -- after the switch -------------------------------------------------------------------
def publish(tenant, storage=None):
    """Every process sees `tenant`'s new placement (or maintenance) on its next request:
    the lookup caches are forgotten, the storage measured at a new place (`storage`,
    bytes) kept, and the version each request compares with is published."""
    forget_tenant(tenant)
    if storage is not None:  # (kept, not forgotten: the first writes would all measure at once)
        remember_storage(tenant.id, storage)
    current_app.extensions["portal.silo_engines"].forget(tenant.id)
    try:
        client = redis_holder.client
        client.set(placement_version_key(tenant.id), tenant.placement_version)
    except Exception as exc:  # Redis down: the other processes' 2 s lookup cache bounds it
        log.warning("move of %s: the new version could not be published: %s", tenant.slug, exc)


def _drop_copy(tenant, ref, keep_role):
    """Drop a copy of `tenant`'s rows at `ref`'s place: its pool rows, or its schema or
    database (and its role there, unless `keep_role`: another copy on that server uses it)."""
    if ref.tier == "pool":
        delete_rows(tenant, ref)
        return
    if keep_role:
        storage.drop_storage_only(tenant.id, ref.tier, ref.placement_env)
        storage.release_role(tenant.id, ref.tier, ref.placement_env)
    else:
        storage.drop_storage(tenant.id, ref.tier, ref.placement_env)


def droppable_from(move):
    """When a switched move's old copy may go: MOVE_MIN_KEEP_SECONDS after the switch."""
    return move.switched_at + timedelta(seconds=current_app.config["MOVE_MIN_KEEP_SECONDS"])


def droppable_later(move):
    """When the pages may offer to drop a move's old copy, if not yet; None once it may."""
    when = droppable_from(move)
    return when if when > _now() else None


def _check_droppable(move):
    if not move.old_copy_kept:
        raise Refused("This move has no old copy to drop.")
    if _now() < droppable_from(move):
        raise Refused(f"The old copy stays fenced until {droppable_from(move):%H:%M:%S} UTC "
                      f"({current_app.config['MOVE_MIN_KEEP_SECONDS']} s after the switch): requests that began "
                      "before the switch may still be finishing there.")


def drop_old_copy(move, actor=None, force=False):
    """Drop what a switched move left at its source: the fence and the copy (the role
    too, unless the tenant's tier now on that server uses it). Not sooner than
    `droppable_from`, unless `force` (the tenant itself is going)."""
    if force and not move.old_copy_kept:
        return
    if not force:
        _check_droppable(move)
    tenant = db.session.get(Tenant, move.tenant_id)
    ref = TenantRef.of(tenant)
    from_env = move.from_placement.url_env or "" if move.from_placement is not None else None
    old = ref.placed(move.from_tier, from_env)
    fence = Fence(old, current_app.config["DATABASE_URL"])
    try:
        fence.remove()
    finally:
        fence.close()
    has_storage = tenant.status in WITH_STORAGE or tenant.status == "deprovisioning"  # (dropped after this)
    shared = (tenant.tier != "pool" and move.from_tier != "pool" and has_storage
              and storage.server_of(tenant.tier, ref.placement_env) == storage.server_of(move.from_tier, from_env))
    _drop_copy(tenant, old, keep_role=shared)
    move.dropped_at = _now()
    audit_events.record("tenant.old_copy_dropped", actor=actor or ("system", None, "retention"), tenant_id=tenant.id,
                        target=tenant.slug, details={"move": str(move.id), "where": _where(move.from_tier,
                                                                                           move.from_placement)})
    db.session.commit()


def kept_old_copies(tenant_id):
    return db.session.execute(select(TenantMove).where(
        TenantMove.tenant_id == tenant_id, TenantMove.state == "switched",
        TenantMove.dropped_at.is_(None))).scalars().all()


def drop_old_copies(tenant_id, actor=None, force=False):
    for move in kept_old_copies(tenant_id):
        drop_old_copy(move, actor, force)


def request_drop(move, actor=None):
    """A job that drops a switched move's old copy now (committed; the caller enqueues it)."""
    _check_droppable(move)
    job = jobqueue.create("drop old copy", move.tenant_id, ["drop old copy"], audit_events.actor_label(actor),
                          params={"move": str(move.id)})
    audit_events.record("tenant.old_copy_drop_requested", actor=actor, tenant_id=move.tenant_id,
                        details={"move": str(move.id)})
    db.session.commit()
    return job


def recent(limit=100):
    """(move, tenant slug) pairs, newest first."""
    return db.session.execute(select(TenantMove, Tenant.slug).join(Tenant, Tenant.id == TenantMove.tenant_id)
                              .order_by(TenantMove.created_at.desc()).limit(limit)).all()


def run_drop(job, progress):
    """Job kind "drop old copy": at the end of the keeping time, or asked by staff."""
    move = db.session.get(TenantMove, job.params["move"])
    progress.step("drop old copy", "running")
    if move is not None and move.old_copy_kept:
        drop_old_copy(move)  # (due at drop_after, never sooner than droppable_from)
    progress.step("drop old copy", "done")
    progress.finish("succeeded")


def roll_back_interrupted():
    """Moves whose worker died before the switch (their job no longer running): undone,
    so their tenants work on their sources again. Run by every worker as it starts."""
    rolled = 0
    for move in db.session.execute(select(TenantMove).where(TenantMove.state.in_(
            ("copying", "catching_up", "frozen", "validating")))).scalars().all():
        job = db.session.get(Job, move.job_id) if move.job_id else None
        if job is not None and jobqueue.shown_state(job) == "running":
            continue
        Mover(move).undo(f"the worker running it stopped during {move.state}")
        if job is not None and job.state in ("queued", "running", "interrupted"):
            job.state, job.finished_at = "failed", job.finished_at or _now()
            job.error = "interrupted: the move was rolled back; the tenant is where it was"
            db.session.commit()
        rolled += 1
    return rolled


# -- draining a server ------------------------------------------------------------------
def tenants_on(placement):
    """The tenants with storage whose silo database is on `placement`, by slug."""
    return db.session.execute(select(Tenant).where(Tenant.placement_id == placement.id,
                                                   Tenant.status.in_(WITH_STORAGE))
                              .order_by(Tenant.slug)).scalars().all()


def check_drain(placement, to):
    """The tenants a drain of `placement` to `to` would move; Refused with the reason."""
    if to.id == placement.id:
        raise Refused("Drain a placement to another one.", "to")
    if storage.server_of("silo", to.url_env) == storage.server_of("silo", placement.url_env):
        raise Refused(f"{to.name} is on the same server as {placement.name}.", "to")
    tenants = tenants_on(placement)
    if not tenants:
        raise Refused(f"No tenant is on {placement.name}.", "to")
    return tenants


def request_drain(placement, to, actor=None):
    """Record a job that moves every tenant off `placement` to `to` (committed; the caller
    enqueues it). Resumable: run again, it moves those still there."""
    tenants = check_drain(placement, to)
    job = jobqueue.create("drain", None, [t.slug for t in tenants], audit_events.actor_label(actor),
                          params={"placement": str(placement.id), "to": str(to.id)})
    audit_events.record("placement.drain_requested", actor=actor, target=placement.name,
                        details={"to": to.name, "tenants": len(tenants), "job": str(job.id)})
    db.session.commit()
    return job


def move_off(tenant, to, actor):
    """Move `tenant` to silo on placement `to`, here and now: the move, switched or not
    (Refused when it may not move)."""
    move, move_job = request_move(tenant, "silo", to.id, actor)
    jobqueue.run(move_job, run)
    db.session.refresh(move)
    return move


def describe(move):
    """A move's outcome in a line."""
    if move.state == "switched":
        return f"moved: {move.figures.get('copied_rows', 0):,} rows, writes frozen {move.figures.get('freeze_ms')} ms"
    return f"{move.state.upper()}: {move.error}"


def run_drain(job, progress):
    """Job kind "drain": each tenant still on the placement moved, one after another (a
    step each); one that cannot move is reported and the others go on."""
    placement, to = db.session.get(Placement, job.params["placement"]), db.session.get(Placement, job.params["to"])
    failed = []
    for tenant in tenants_on(placement):
        progress.step(tenant.slug, "running")
        try:
            move = move_off(tenant, to, ("system", None, job.created_by))
        except Refused as exc:
            failed.append(f"{tenant.slug}: {exc.message}")
            progress.step(tenant.slug, "failed")
            continue
        progress.step(tenant.slug, "done" if move.state == "switched" else "failed")
        progress.note(f"{tenant.slug}: {describe(move)}")
        if move.state != "switched":
            failed.append(f"{tenant.slug}: {move.error}")
    if failed:
        progress.finish("failed", error="; ".join(failed)[:2000])
    else:
        progress.finish("succeeded")
