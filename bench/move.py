"""Online tenant moves (issue 12): the write freeze, lost and doubled writes, the total time
against `pg_dump | pg_restore` of the same rows, a neighbour's reads, and how freeze and
total grow with the tenant's size — all measured in the same run.

Builds a throwaway database on the server named by PORTAL_BENCH_DATABASE_URL, else
PORTAL_TEST_DATABASE_URL, else the local default (bench/_common.py), and starts a second
PostgreSQL server of its own (the embedded pgserver, on a socket in a temporary folder)
as placement `second`.

1. A pool tenant with --orders orders and --users users (inserted as the owner with
   INSERT ... SELECT generate_series) moves to a silo on the second server and back,
   --rounds times each, while
   - a writer adds orders to it through the API at --rate writes/s in all, open loop
     (each write has its time; a 503 is retried after 10 ms, same marker), shared by
     --writer-processes processes, each with an app of its own, as web processes would
     be (one process at 100 writes/s spent most of its time waiting for its own GIL);
   - a reader (another process) reads another pool tenant's orders through the API,
     --read-rate a second.
   Both first run 20 s with no move: the comparison. Per move: the mover's freeze (from
   announcing it to the switch published); the longest hold of a write, timed in the web
   process around `fences.wait_while_frozen` (the time the issue defines: a tenant's
   writes held or refused); the writer's longest wait (its first attempt
   to its 201, its usual latency and any retries included) of a write under way at any
   moment of the freeze, and of any write begun during the whole move, against the same
   figure in windows as long without a move. At the
   end the writer's log is checked against the tenant's rows: every accepted marker once,
   no other. The reader's p99 during the moves against its p99 without them.
2. Baseline, same run, same rows: `pg_dump -Fc --data-only` of the tenant's tables piped
   into `pg_restore --data-only` into empty copies of them on the second server (the
   schema restored beforehand, untimed); median of --rounds // 2 (at least 3), on the
   quiet machine before the writer starts, and again under the writer and reader.
3. Growth: one move there and back at each of --sizes orders (no writer), freeze and total.

Measures, never asserts. Everything made is removed at the end, also after a failure.

    .venv/bin/python bench/move.py                         # the issue's figures: about 10 min here
    .venv/bin/python bench/move.py --rounds 2 --orders 10000 --sizes 10000   # a quick check
"""
import argparse
import atexit
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import PASSWORD, Throwaway, percentile  # noqa: E402
from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from portal.auth.principals import TenantPrincipal  # noqa: E402
from portal.dbsetup import owner_connection  # noqa: E402
from portal.embedded import Embedded  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.lifecycle import fences, moves, placements, provisioning  # noqa: E402
from portal.plans import services as plan_services  # noqa: E402
from portal.services import jobqueue  # noqa: E402
from portal.services.passwords import hash_password  # noqa: E402
from portal.tenancy.context import TenantRef, tenant_context  # noqa: E402
from portal.tenancy.data import Order, TenantUser  # noqa: E402
from portal.tenancy.placement import tenant_session  # noqa: E402
from portal.tokens import services as tokens  # noqa: E402

SECOND_ENV = "PORTAL_BENCH_SECOND_SERVER_URL"
ACTOR = ("system", None, "bench")
QUIET_SECONDS = 20
WRITER_THREADS = 8


def fill(app, tenant, orders, users):
    """Rows for a pool tenant, as the owner (a superuser: RLS does not apply)."""
    with owner_connection(app.config["DATABASE_URL"]) as conn:
        conn.execute(text(
            "insert into tenant_data.orders (tenant_id, id, number, customer, amount_cents, status, created_at) "
            "select :t, gen_random_uuid(), 1000 + n, 'Customer ' || n, n % 100000, 'open', now() - n * interval '1 s' "
            "from generate_series(1, :n) n"), {"t": tenant.id, "n": orders})
        conn.execute(text(
            "insert into tenant_data.users (tenant_id, id, email, name, role, is_active, created_at) "
            "select :t, gen_random_uuid(), 'user' || n || '@bench.example', 'User ' || n, 'member', true, now() "
            "from generate_series(1, :n) n"), {"t": tenant.id, "n": users})


def make_tenant(app, orders, users):
    slug = f"mv-{uuid.uuid4().hex[:8]}"
    tenant, _ = provisioning.create_tenant(slug, f"Move bench {slug}", "enterprise", f"admin@{slug}.example",
                                           tier="pool")
    plan_services.set_override(tenant, "limit:requests_per_minute", "1000000", None, "bench", ACTOR)
    plan_services.set_override(tenant, "limit:api_calls_per_day", "1000000000", None, "bench", ACTOR)
    fill(app, tenant, orders, users)
    with tenant_session(TenantRef.of(tenant)) as session:
        admin = session.execute(select(TenantUser).where(TenantUser.role == "admin")).scalars().first()
        admin.password_hash = hash_password(PASSWORD)
        principal = TenantPrincipal.of(admin, session)
    with tenant_context(TenantRef.of(tenant)):
        _row, token = tokens.create("bench", list(tokens.SCOPES), None, principal)
    return tenant, token


class Writer:
    """Open loop: write i is due at start + i / rate, sent by one of `threads` threads (each
    with a client of its own), so that a slow answer does not delay the next writes."""

    def __init__(self, app, token, rate, threads=WRITER_THREADS):
        self.app, self.token, self.interval, self.threads = app, token, 1 / rate, threads
        self.local = threading.local()
        self.log = []  # (marker, first attempt at, accepted at or None, attempts)

    def write(self, n, stop):
        if not hasattr(self.local, "client"):
            self.local.client = self.app.test_client()
        marker, first, attempts, accepted = f"w{n}-{uuid.uuid4().hex[:8]}", time.perf_counter(), 0, None
        while not stop.is_set() and attempts < 200:
            attempts += 1
            answer = self.local.client.post("/api/v1/orders", json={"customer": marker, "amount_cents": 1},
                                            headers={"Authorization": f"Bearer {self.token}"})
            if answer.status_code == 201:
                accepted = time.perf_counter()
                break
            time.sleep(0.01)
        self.log.append((marker, first, accepted, attempts))

    def run(self, stop):
        with ThreadPoolExecutor(self.threads) as pool:
            start, n = time.perf_counter(), 0
            while not stop.is_set():
                time.sleep(max(0.0, start + n * self.interval - time.perf_counter()))
                pool.submit(self.write, n, stop)
                n += 1
        return self.log


class Reader:
    """Reads at `rate` a second (paced: a reader flooding the server would measure the
    flood, not the move)."""

    def __init__(self, app, token, rate):
        self.client, self.token, self.interval = app.test_client(), token, 1 / rate
        self.samples = []  # (at, seconds, status)
        self.errors = []

    def run(self, stop):
        start, n = time.perf_counter(), 0
        while not stop.is_set():
            time.sleep(max(0.0, start + n * self.interval - time.perf_counter()))
            started = time.perf_counter()
            answer = self.client.get("/api/v1/orders", headers={"Authorization": f"Bearer {self.token}"})
            self.samples.append((started, time.perf_counter() - started, answer.status_code))
            if answer.status_code >= 500 and len(self.errors) < 5:
                self.errors.append(answer.get_data(as_text=True)[:300])
            n += 1
        return self.samples, self.errors


def client_process(kind, config, token, rate, stop, results):
    """A writer or reader in a process of its own, with an app of its own (as a web
    process of the portal would be: its own interpreter, so it does not share the
    mover's). perf_counter is CLOCK_MONOTONIC, one clock for every process."""
    from portal import create_app

    app = create_app(config)
    holds = watch_holds() if kind == "writer" else None
    results.put((kind, (Writer if kind == "writer" else Reader)(app, token, rate).run(stop), holds))


def watch_holds():
    """[(began, ended)] (perf_counter) of each write this process held for a freeze: the
    time the issue asks for, "the tenant's writes ... held", read where it happens."""
    holds, wait = [], fences.wait_while_frozen

    def waiting(tenant_id, max_ms):
        began = time.perf_counter()
        try:
            return wait(tenant_id, max_ms)
        finally:
            holds.append((began, time.perf_counter()))

    fences.wait_while_frozen = waiting
    return holds


def run_move(tenant, tier, placement=None):
    placement_id = placements.by_name(placement).id if placement else None
    started = time.perf_counter()
    move, job = moves.request_move(tenant, tier, placement_id, ACTOR)
    jobqueue.run(job, moves.run)
    db.session.refresh(move)
    if move.state != "switched":
        raise RuntimeError(f"move {move.state}: {move.error}")
    window = (started, time.perf_counter())
    # The next move comes back here: its old copy goes first, once it may (MIN_KEEP below).
    time.sleep(max(0.0, (moves.droppable_from(move) - datetime.now(timezone.utc)).total_seconds()))
    moves.drop_old_copy(move)
    return move, window


def baseline(app, tenant, scratch_url, rounds):
    """pg_dump -Fc --data-only of the tenant's tables | pg_restore --data-only into empty
    copies on the second server: seconds, median of `rounds`."""
    source = make_url(app.config["DATABASE_URL"])
    target = make_url(scratch_url)
    dump_args = ["pg_dump", "-Fc", "--data-only", "-t", "tenant_data.orders", "-t", "tenant_data.users",
                 "-d", source.set(drivername="postgresql").render_as_string(hide_password=False)]
    times = []
    for _ in range(rounds):
        with owner_connection(scratch_url, autocommit=True) as conn:
            conn.execute(text("truncate tenant_data.orders, tenant_data.users"))
        started = time.perf_counter()
        dump = subprocess.Popen(dump_args, stdout=subprocess.PIPE)
        restore = subprocess.run(["pg_restore", "--data-only", "--disable-triggers", "-d",
                                  target.set(drivername="postgresql").render_as_string(hide_password=False)],
                                 stdin=dump.stdout, capture_output=True)
        dump.wait()
        times.append(time.perf_counter() - started)
        if restore.returncode != 0:
            raise RuntimeError(restore.stderr.decode()[-500:])
    return statistics.median(times)


def scratch_copy(app, second_url):
    """A database on the second server with empty copies of the pool's tables (untimed)."""
    name = f"{app.config['PORTAL_NAME_PREFIX']}scratch"
    with owner_connection(second_url, autocommit=True) as conn:
        conn.execute(text(f'create database "{name}"'))
    url = make_url(second_url).set(database=name).render_as_string(hide_password=False)
    schema = subprocess.run(["pg_dump", "--schema-only", "-n", "tenant_data", "-d",
                             make_url(app.config["DATABASE_URL"]).set(drivername="postgresql")
                             .render_as_string(hide_password=False)], capture_output=True, check=True).stdout
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=0", "-d",
                    make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)],
                   input=schema, capture_output=True)
    return url


def writer_freezes(log, windows, overlapping=False):
    """Per window: the longest wait (first try to 201, ms) of a logical write begun in it,
    or, `overlapping`, of one under way at any moment of it."""
    out = []
    for start, end in windows:
        waits = [(accepted - first) * 1000 for _m, first, accepted, _a in log if accepted is not None and (
            first <= end and accepted >= start if overlapping else start <= first <= end)]
        out.append(max(waits) if waits else 0.0)
    return out


FREEZES = []  # [announced, ended] (perf_counter) of each freeze of the mover, in this process


def watch_freezes():
    """Note when the mover announces a freeze and ends it (it calls them as fences.*)."""
    announce, end = fences.announce_freeze, fences.end_freeze

    def announcing(tenant_id, ttl_ms):
        FREEZES.append([time.perf_counter(), None])
        announce(tenant_id, ttl_ms)

    def ending(tenant_id):
        end(tenant_id)
        if FREEZES and FREEZES[-1][1] is None:
            FREEZES[-1][1] = time.perf_counter()

    fences.announce_freeze, fences.end_freeze = announcing, ending


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=100, help="the writer's writes a second")
    parser.add_argument("--writer-processes", type=int, default=2,
                        help="processes sharing the writes (as web processes would), each with its own app")
    parser.add_argument("--read-rate", type=int, default=20, help="the neighbour's reads a second")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that the cleanup and atexit run
    watch_freezes()
    print(f"load before: {os.getloadavg()}")
    folder = tempfile.mkdtemp(prefix="portal-bench-second-")
    os.chmod(folder, 0o755)  # pgserver runs PostgreSQL as its own user when we are root
    atexit.register(shutil.rmtree, folder, True)  # after pgserver's own stop at exit (LIFO), which needs it
    second = Embedded(folder)
    os.environ[SECOND_ENV] = second.start_postgres_only("postgres")
    # The old copy stays fenced 3 s after a switch (not 300: the moves come back at once),
    # longer than any of this bench's requests lasts.
    # Pools as large as the writer's threads (a web process's pools should match its
    # threads; smaller ones open and close connections all the time, which is not a move's
    # cost).
    bench = Throwaway(MOVE_KEEP_HOURS=1, MOVE_MIN_KEEP_SECONDS=3, SILO_POOL_SIZE=WRITER_THREADS,
                      SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "pool_size": WRITER_THREADS + 2,
                                                 "max_overflow": 5})
    try:
        app = bench.open()
        app.config["JOB_HEARTBEAT_SECONDS"] = 5
        with app.app_context():
            placements.register("second", SECOND_ENV, 1000, actor=ACTOR)
            tenant, token = make_tenant(app, args.orders, args.users)
            neighbour, neighbour_token = make_tenant(app, 1000, 10)
            scratch = scratch_copy(app, os.environ[SECOND_ENV])
            base = baseline(app, tenant, scratch, max(3, args.rounds // 2))
            print(f"baseline pg_dump | pg_restore of {args.orders:,} orders + {args.users:,} users: "
                  f"{base:.2f} s (median)")
            context = multiprocessing.get_context("spawn")
            stop, results = context.Event(), context.Queue()
            reader = context.Process(target=client_process, args=("reader", bench.config, neighbour_token,
                                                                  args.read_rate, stop, results))
            writers = [context.Process(target=client_process, args=("writer", bench.config, token,
                                                                    args.rate / args.writer_processes, stop, results))
                       for _ in range(args.writer_processes)]
            reader.start()
            for writer in writers:
                writer.start()
            time.sleep(5)  # their apps made, their first requests done
            quiet_from = time.perf_counter()
            time.sleep(QUIET_SECONDS)  # both at work, no move: what the moves are compared with
            quiet_until = time.perf_counter()
            # The baseline again, under the same load as the moves (the writer's windows
            # without a move end before it: it competes for the same cores).
            loaded_base = baseline(app, tenant, scratch, max(3, args.rounds // 2))
            print(f"baseline under the writer and reader: {loaded_base:.2f} s (median)")
            windows, figures = [], []
            for _round in range(args.rounds):
                for tier, placement in (("silo", "second"), ("pool", None)):
                    move, window = run_move(tenant, tier, placement)
                    windows.append(window)
                    figures.append(move.figures)
                    print(f"  move {len(windows):>2} to {tier:<4}: total {window[1] - window[0]:6.2f} s, "
                          f"mover's freeze {move.figures['freeze_ms']:7.1f} ms, replayed "
                          f"{move.figures.get('replayed_changes', 0)}; freeze parts "
                          f"{move.figures['freeze_parts_ms']}", flush=True)
            time.sleep(1)
            stop.set()
            done = [results.get(timeout=120) for _ in range(1 + len(writers))]
            for process in (*writers, reader):
                process.join(30)
            writer_log = [entry for kind, log, _h in done if kind == "writer" for entry in log]
            holds = [hold for kind, _log, found in done if kind == "writer" for hold in found]
            reader_samples, reader_errors = next(found for kind, found, _h in done if kind == "reader")
            db.session.refresh(tenant)
            with tenant_session(TenantRef.of(tenant)) as session:
                stored = [c for c in session.execute(select(Order.customer)).scalars() if c.startswith("w")]
            sent = [entry for entry in writer_log if entry[3] > 0]  # (not those the stop found still queued)
            accepted = [m for m, _f, a, _n in sent if a is not None]
            span = max(f for _m, f, _a, _n in sent) - min(f for _m, f, _a, _n in sent)
            lost = len(set(accepted) - set(stored))
            doubled = len(stored) - len(set(stored))
            foreign = len(set(stored) - set(accepted))
            freezes = [f["freeze_ms"] for f in figures]
            waits = writer_freezes(writer_log, windows)
            freeze_windows = [next(f for f in reversed(FREEZES) if a <= f[0] <= b) for a, b in windows]
            held = writer_freezes(writer_log, freeze_windows, overlapping=True)
            longest_holds = [max([(e - b) * 1000 for b, e in holds if b <= end and e >= start] or [0.0])
                             for start, end in freeze_windows]
            totals = [w[1] - w[0] for w in windows]
            length = percentile(totals, 50)
            quiet_waits = writer_freezes(writer_log, [(quiet_from + i * length, quiet_from + (i + 1) * length)
                                                      for i in range(int((quiet_until - quiet_from) // length))])
            before = [s for at, s, _st in reader_samples if quiet_from <= at < quiet_until]
            during = [s for at, s, _st in reader_samples if any(a <= at <= b for a, b in windows)]
            failed_reads = sum(1 for _a, _s, st in reader_samples if st != 200)
            if failed_reads:
                print("failed reads:", [st for _a, _s, st in reader_samples if st != 200][:10], reader_errors)
            print()
            print(f"writes: {len(sent):,} logical ({len(sent) / span:.0f}/s), {len(accepted):,} accepted, "
                  f"{sum(n - 1 for *_x, n in sent):,} retries after 503; "
                  f"lost {lost}, doubled {doubled}, unknown {foreign}")
            print(f"mover's freeze ms: p50 {percentile(freezes, 50):.1f} p95 {percentile(freezes, 95):.1f} "
                  f"max {max(freezes):.1f}")
            latencies = [(a - f) * 1000 for _m, f, a, n in sent if a is not None and n == 1]
            print(f"writer's latency of a write accepted at once ms: p50 {percentile(latencies, 50):.1f} "
                  f"p99 {percentile(latencies, 99):.1f}")
            print(f"longest hold of a write in a freeze (web process, in wait_while_frozen) ms: p50 "
                  f"{percentile(longest_holds, 50):.1f} p95 {percentile(longest_holds, 95):.1f} "
                  f"max {max(longest_holds):.1f} ({len(holds):,} writes held)")
            print(f"writer's longest wait of a write under way during the freeze ms: p50 {percentile(held, 50):.1f} "
                  f"p95 {percentile(held, 95):.1f} max {max(held):.1f}")
            print(f"writer's longest wait per move ms: p50 {percentile(waits, 50):.1f} "
                  f"p95 {percentile(waits, 95):.1f} max {max(waits):.1f}; in as long without a move: "
                  f"p50 {percentile(quiet_waits, 50):.1f} p95 {percentile(quiet_waits, 95):.1f} "
                  f"max {max(quiet_waits):.1f} ({len(quiet_waits)} windows)")
            print(f"total per move s: p50 {percentile(totals, 50):.2f} max {max(totals):.2f}; "
                  f"ratio to pg_dump | pg_restore: {percentile(totals, 50) / base:.2f}x (p50) against the "
                  f"baseline on a quiet machine, {percentile(totals, 50) / loaded_base:.2f}x against it under "
                  f"the writer and reader")
            print(f"neighbour reads: {len(reader_samples):,}, failed {failed_reads}; p99 before "
                  f"{percentile(before, 99) * 1000:.1f} ms, during moves {percentile(during, 99) * 1000:.1f} ms "
                  f"({percentile(during, 99) / percentile(before, 99):.2f}x)")
            print()
            print("growth (no writer): orders, total to silo / back s, freeze to silo / back ms")
            for size in [int(s) for s in args.sizes.split(",") if s]:
                grown, _token = make_tenant(app, size, min(1000, size // 100))
                there, w1 = run_move(grown, "silo", "second")
                back, w2 = run_move(grown, "pool")
                print(f"  {size:>9,}: {w1[1] - w1[0]:6.2f} / {w2[1] - w2[0]:6.2f} s   "
                      f"{there.figures['freeze_ms']:7.1f} / {back.figures['freeze_ms']:7.1f} ms", flush=True)
                provisioning_cleanup(grown)
            provisioning_cleanup(tenant)
            provisioning_cleanup(neighbour)
            db.session.remove()
    finally:
        bench.close()
    print(f"load after: {os.getloadavg()}")


def provisioning_cleanup(tenant):
    """The tenant's rows and storage go with the throwaway database; its silo (if any) too."""
    moves.drop_old_copies(tenant.id)


if __name__ == "__main__":
    main()
