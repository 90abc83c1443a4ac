"""The tenant lifecycle (issue 4): provisioning time per tier, and export and import
throughput against pg_dump / psql as the baseline, all measured in the same run.

Builds a throwaway database `portal_bench_<hex>` on the server named by
PORTAL_BENCH_DATABASE_URL, else PORTAL_TEST_DATABASE_URL, else the local default (a
superuser: it makes databases and roles), an app whose application role, tenant roles and
silo databases all start with `pl<hex>_`, Redis keys under `pl<hex>:`, and exports in a
temporary folder. Registers a placement `local` (url_env "": the registry's server).

1. Provisioning: --rounds x `create_tenant` for each tier (pool, bridge, silo), interleaved
   round by round (the order of the tiers rotates), so a shared machine's load drift
   falls on every tier alike. Prints median and p95 per tier, the ratio to pool, and the
   median time of each provisioning step (timed around the saga's steps: the steps run
   unchanged, only their start and end are noted).
2. Export and import, for a pool and a bridge tenant with --orders orders (inserted as the
   owner with INSERT ... SELECT generate_series): `write_export`, `verify_export`, and an
   import into a new tenant of the same tier (`request_import` + `jobqueue.run(job, provision)`,
   as a worker runs it; `load_rows` is timed on its own, and so is the whole "load data"
   step, which may check the file again before loading it).
   Baseline, on the same rows: pool, `COPY (select ... where tenant_id = ...) TO STDOUT`
   through psql, and `COPY ... FROM STDIN` through psql into a copy of the table in a
   scratch database; bridge, `pg_dump --data-only -t t_<hex>.orders` and `psql -f` of that
   dump into a copy of the schema's table in the scratch database. The copies carry the
   same indexes and policies (made from `pg_dump --schema-only`, untimed). Median of
   --repeats; rows/s and the ratio ours / baseline.

Measures, never asserts. Everything is removed at the end, also after a failure: each
bridge and silo tenant's storage (`drop_storage`), the database, every database and role
with the run's prefix, the run's Redis keys and the export folder.

    .venv/bin/python bench/lifecycle.py                                   # full: about 7 min here
    .venv/bin/python bench/lifecycle.py --rounds 2 --orders 2000 --repeats 1   # quick check
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from portal import create_app  # noqa: E402
from portal.dbsetup import setup_database  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.lifecycle import placements, provisioning  # noqa: E402
from portal.lifecycle.exports import verify_export, write_export  # noqa: E402
from portal.lifecycle.storage import drop_storage  # noqa: E402
from portal.models import Tenant  # noqa: E402
from portal.services import jobqueue  # noqa: E402
from portal.tenancy.names import schema_name  # noqa: E402

TIERS = ("pool", "bridge", "silo")
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
HANDLER = "(job handler: steps + progress)"
LOAD_ROWS = "(load_rows)"


def log(message):
    print(message, file=sys.stderr, flush=True)


def p95(samples):
    """Nearest-rank 95th percentile."""
    ordered = sorted(samples)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def rate(rows, seconds):
    return rows / seconds if seconds > 0 else float("inf")


# -- the run's database, app and roles ----------------------------------------------------
class Run:
    def __init__(self):
        hexid = uuid.uuid4().hex[:8]
        self.hex = hexid
        self.database = f"portal_bench_{hexid}"
        self.prefix = f"pl{hexid}_"
        self.redis_prefix = f"pl{hexid}"
        self.scratch = f"{self.prefix}scratch"
        server = make_url(os.environ.get("PORTAL_BENCH_DATABASE_URL") or os.environ.get("PORTAL_TEST_DATABASE_URL")
                          or DEFAULT_SERVER)
        self.server = server.set(drivername="postgresql+psycopg2")
        self.admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
        self.owner_url = self.server.set(database=self.database).render_as_string(hide_password=False)
        # libpq URLs for pg_dump and psql (no "+psycopg2")
        self.libpq_owner = self.server.set(drivername="postgresql", database=self.database) \
            .render_as_string(hide_password=False)
        self.libpq_scratch = self.server.set(drivername="postgresql", database=self.scratch) \
            .render_as_string(hide_password=False)
        self.folder = tempfile.mkdtemp(prefix=f"portal-bench-{hexid}-")
        self.app = None
        self.made = []  # (tenant id, tier, url_env) of every tenant that may have storage

    def open(self):
        with self.admin.connect() as conn:
            conn.execute(text(f'create database "{self.database}"'))
            conn.execute(text(f'create database "{self.scratch}"'))
        self.app = create_app({
            "DATABASE_URL": self.owner_url,
            "PORTAL_APP_ROLE": f"{self.prefix}app",
            "PORTAL_NAME_PREFIX": self.prefix,
            "PORTAL_REDIS_PREFIX": self.redis_prefix,
            "REDIS_URL": os.environ.get("PORTAL_BENCH_REDIS_URL") or os.environ.get("PORTAL_TEST_REDIS_URL")
            or "redis://127.0.0.1:6379/0",
            "PORTAL_EXPORT_DIR": os.path.join(self.folder, "exports"),
            "SECRET_KEY": f"bench-{self.hex}",
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST": 1024,
        })
        setup_database(self.app.config)
        return self.app

    def close(self):
        if self.app is not None:
            with self.app.app_context():
                for tenant_id, tier, url_env in self.made:
                    if tier == "pool":
                        continue
                    try:
                        drop_storage(tenant_id, tier, url_env)
                    except Exception as exc:  # keep going: the database and prefix sweep follow
                        log(f"(drop_storage of {tenant_id} ({tier}) failed: {exc})")
                db.session.remove()
                db.engine.dispose()
            self.app.extensions["portal.silo_engines"].dispose_all()
            try:
                client = self.app.extensions["portal.redis"]
                for key in client.scan_iter(match=f"{self.redis_prefix}:*", count=500):
                    client.unlink(key)
                for key in client.scan_iter(match=f"{self.redis_prefix}-*", count=500):
                    client.unlink(key)
            except Exception as exc:
                log(f"(could not clear Redis keys: {exc})")
        like = {"p": self.prefix.replace("_", "\\_") + "%"}
        with self.admin.connect() as conn:
            conn.execute(text(f'drop database if exists "{self.database}" with (force)'))
            for name in conn.execute(text("select datname from pg_database where datname like :p"), like).scalars():
                conn.execute(text(f'drop database if exists "{name}" with (force)'))
            roles = list(conn.execute(text("select rolname from pg_roles where rolname like :p"), like).scalars())
            for i in range(0, len(roles), 200):
                conn.execute(text("drop role if exists " + ", ".join(f'"{r}"' for r in roles[i:i + 200])))
        self.admin.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)


# -- step timing --------------------------------------------------------------------------
class StepClock:
    """Wraps a job's Progress: notes when each saga step starts and ends (after the
    'running' report is committed, before the 'done' one), and passes every call on."""

    def __init__(self, progress, sink):
        self._progress, self._sink, self._started = progress, sink, {}

    def step(self, name, state):
        if state == "done" and name in self._started:
            self._sink[name] = time.perf_counter() - self._started.pop(name)
        self._progress.step(name, state)
        if state == "running":
            self._started[name] = time.perf_counter()

    def __getattr__(self, attribute):
        return getattr(self._progress, attribute)


@contextmanager
def timed_steps():
    """While open, `provisioning.provision` (what create_tenant hands to jobqueue.run) reports
    its steps' times into the dict yielded, and `load_rows` (called by the import's "load
    data" step) its own time under LOAD_ROWS; both restored after."""
    original, original_load = provisioning.provision, provisioning.load_rows
    last = {}

    def provision(job, progress):
        last.clear()
        started = time.perf_counter()
        original(job, StepClock(progress, last))
        last[HANDLER] = time.perf_counter() - started

    def load_rows(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original_load(*args, **kwargs)
        finally:
            last[LOAD_ROWS] = time.perf_counter() - started

    provisioning.provision, provisioning.load_rows = provision, load_rows
    try:
        yield last
    finally:
        provisioning.provision, provisioning.load_rows = original, original_load


class CommitCounter:
    """Counts the transactions committed through SQLAlchemy (every engine) while open."""

    def __init__(self):
        self.count = 0

    def _on_commit(self, conn):
        self.count += 1

    def __enter__(self):
        event.listen(Engine, "commit", self._on_commit)
        return self

    def __exit__(self, *exc):
        event.remove(Engine, "commit", self._on_commit)


def commit_latency(run, n=200):
    """Median time of a one-row INSERT + COMMIT on this server (the price of one commit)."""
    engine = create_engine(run.owner_url)
    samples = []
    try:
        with engine.connect() as conn:
            conn.execute(text("create table bench_commit (id int)"))
            conn.commit()
            for i in range(n):
                started = time.perf_counter()
                conn.execute(text("insert into bench_commit values (:i)"), {"i": i})
                conn.commit()
                samples.append(time.perf_counter() - started)
            conn.execute(text("drop table bench_commit"))
            conn.commit()
    finally:
        engine.dispose()
    return statistics.median(samples), p95(samples)


def keep(run, tenant):
    run.made.append((tenant.id, tenant.tier, (tenant.placement.url_env or "") if tenant.placement else None))


# -- 1. provisioning ----------------------------------------------------------------------
def bench_provisioning(run, rounds):
    times = {tier: [] for tier in TIERS}
    steps = {tier: {} for tier in TIERS}
    commits = {tier: [] for tier in TIERS}
    with run.app.app_context(), timed_steps() as last:
        placements.register("local", "", 1000)
        for i in range(rounds):
            order = TIERS[i % 3:] + TIERS[:i % 3]
            for tier in order:
                slug = f"prov-{tier}-{i:03d}"
                started = time.perf_counter()
                try:
                    with CommitCounter() as counter:
                        tenant, _token = provisioning.create_tenant(slug, f"Prov {tier} {i}", "basic",
                                                                    f"admin@{slug}.example", tier=tier)
                finally:
                    made = db.session.query(Tenant).filter_by(slug=slug).one_or_none()
                    if made is not None:
                        keep(run, made)
                times[tier].append(time.perf_counter() - started)
                commits[tier].append(counter.count)
                for name, seconds in last.items():
                    steps[tier].setdefault(name, []).append(seconds)
                db.session.remove()
            if (i + 1) % 5 == 0:
                log(f"  provisioned round {i + 1}/{rounds}")
    return times, steps, commits, commit_latency(run)


def print_provisioning(times, steps, rounds, commits, latency):
    print(f"\n1. provisioning: create_tenant (request + the job run inline), {rounds} per tier, ms")
    base = statistics.median(times["pool"])
    base95 = p95(times["pool"])
    print(f"{'tier':<8}{'median':>10}{'p95':>10}{'min':>10}{'max':>10}{'median/pool':>13}{'p95/pool':>10}")
    for tier in TIERS:
        s = times[tier]
        med = statistics.median(s)
        print(f"{tier:<8}{med * 1e3:>10.1f}{p95(s) * 1e3:>10.1f}{min(s) * 1e3:>10.1f}{max(s) * 1e3:>10.1f}"
              f"{med / base:>13.2f}{p95(s) / base95:>10.2f}")
    names = [name for name in (list(steps["silo"]) or list(steps["pool"])) if name != HANDLER]
    print("\nmedian time of each step, ms")
    print(f"{'step':<30}" + "".join(f"{tier:>10}" for tier in TIERS))
    for name in names:
        print(f"{name:<30}" + "".join(
            f"{statistics.median(steps[t][name]) * 1e3:>10.1f}" if steps[t].get(name) else f"{'-':>10}"
            for t in TIERS))
    print(f"{'sum of the step medians':<30}" + "".join(
        f"{sum(statistics.median(v) for k, v in steps[t].items() if k != HANDLER) * 1e3:>10.1f}" for t in TIERS))
    print(f"{'job handler (steps+progress)':<30}" + "".join(
        f"{statistics.median(steps[t][HANDLER]) * 1e3:>10.1f}" if steps[t].get(HANDLER) else f"{'-':>10}"
        for t in TIERS))
    print(f"{'whole create_tenant':<30}" + "".join(f"{statistics.median(times[t]) * 1e3:>10.1f}" for t in TIERS))
    print(f"{'commits per create_tenant':<30}" + "".join(f"{statistics.median(commits[t]):>10.0f}" for t in TIERS))
    print(f"one INSERT + COMMIT on this server (reference): median {latency[0] * 1e3:.2f} ms, "
          f"p95 {latency[1] * 1e3:.2f} ms")


# -- 2. export and import -----------------------------------------------------------------
def psql(url, *args, stdin=None, stdout=None):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, *args], check=True,
                   stdin=stdin, stdout=stdout if stdout is not None else subprocess.DEVNULL)


def orders_table(conn, tenant):
    """The owner's name of the tenant's orders table (identifiers quoted by the dialect)."""
    quote = conn.dialect.identifier_preparer.quote_schema
    schema = "tenant_data" if tenant.tier == "pool" else schema_name(tenant.id)
    return schema, f"{quote(schema)}.orders"


def fill_orders(run, tenant, n):
    engine = create_engine(run.owner_url)
    try:
        with engine.begin() as conn:
            schema, table = orders_table(conn, tenant)
            conn.execute(text(
                f"insert into {table} (tenant_id, id, number, customer, amount_cents, status, created_at) "
                "select :t, gen_random_uuid(), i, 'Customer ' || i, (i::bigint * 7919 % 1000000)::int, "
                "(array['open','paid','shipped','cancelled'])[1 + i % 4], "
                "now() - i * interval '1 minute' from generate_series(1, :n) i"), {"t": tenant.id, "n": n})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"vacuum analyze {table}"))
    finally:
        engine.dispose()
    return schema


def prepare_scratch(run, tenant, schema):
    """An empty copy of the tenant's orders table (indexes, policies) in the scratch database."""
    quoted = '"' + schema + '"'
    psql(run.libpq_scratch, "-c", f"create schema if not exists {quoted}")
    dump = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-t", f"{quoted}.orders",
                           "-d", run.libpq_owner], check=True, capture_output=True).stdout
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", run.libpq_scratch], input=dump, check=True,
                   stdout=subprocess.DEVNULL)
    return f"{quoted}.orders"


def baseline_once(run, tenant, schema, scratch_table, n):
    """(dump seconds, restore seconds, dump bytes, rows restored) of the tenant's orders."""
    psql(run.libpq_scratch, "-c", f"truncate {scratch_table}")
    path = os.path.join(run.folder, f"baseline-{tenant.tier}.sql")
    started = time.perf_counter()
    if tenant.tier == "pool":
        with open(path, "wb") as out:
            psql(run.libpq_owner, "-c",
                 f"copy (select * from tenant_data.orders where tenant_id = '{tenant.id}') to stdout", stdout=out)
    else:
        subprocess.run(["pg_dump", "--data-only", "-t", f'"{schema}".orders', "-f", path, "-d", run.libpq_owner],
                       check=True)
    dumped = time.perf_counter() - started
    started = time.perf_counter()
    if tenant.tier == "pool":
        with open(path, "rb") as data:
            psql(run.libpq_scratch, "-c", f"copy {scratch_table} from stdin", stdin=data)
    else:
        psql(run.libpq_scratch, "-1", "-f", path)
    restored = time.perf_counter() - started
    size = os.path.getsize(path)
    os.remove(path)
    engine = create_engine(make_url(run.libpq_scratch).set(drivername="postgresql+psycopg2"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"select count(*) from {scratch_table}")).scalar_one()
    finally:
        engine.dispose()
    return dumped, restored, size, rows


def ours_once(run, tenant_id, tier, repeat, check_round_trip):
    """One export, verify and import of the tenant; returns a dict of figures."""
    figures = {}
    with run.app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        started = time.perf_counter()
        path, manifest = write_export(tenant)
        figures["export"] = time.perf_counter() - started
        figures["rows"] = sum(t["rows"] for t in manifest["tables"].values())
        figures["bytes"] = os.path.getsize(path)
        db.session.remove()

        started = time.perf_counter()
        verify_export(path)
        figures["verify"] = time.perf_counter() - started

        slug = f"imp-{tier}-{repeat:02d}"
        started = time.perf_counter()
        imported, job = provisioning.request_import(path, slug, None, None, tier=tier)
        figures["request"] = time.perf_counter() - started  # verify_export again + records
        keep(run, imported)
        with timed_steps() as steps:
            started = time.perf_counter()
            job = jobqueue.run(job, provisioning.provision)
            figures["job"] = time.perf_counter() - started
            figures["load"] = steps.get(LOAD_ROWS, float("nan"))
            figures["load_step"] = steps.get("load data", float("nan"))
        db.session.refresh(job)
        if job.state != "succeeded":
            raise RuntimeError(f"the import job of {slug} ended {job.state}: {job.error}")
        if check_round_trip:
            again = db.session.get(Tenant, imported.id)
            _path, manifest_again = write_export(again)
            figures["round_trip"] = manifest_again["tables"] == manifest["tables"]
        db.session.remove()
        os.remove(path)
    return figures


def bench_exports(run, tiers, n, repeats):
    results = {}
    for tier in tiers:
        with run.app.app_context():
            slug = f"export-{tier}"
            tenant, _token = provisioning.create_tenant(slug, f"Export {tier}", "basic", f"admin@{slug}.example",
                                                        tier=tier)
            keep(run, tenant)
            tenant_id = tenant.id
            db.session.remove()
        log(f"  {tier}: inserting {n:,} orders")
        with run.app.app_context():
            tenant = db.session.get(Tenant, tenant_id)
            schema = fill_orders(run, tenant, n)
            scratch_table = prepare_scratch(run, tenant, schema)
            ours, base = [], []
            for repeat in range(repeats):
                # alternate which side goes first, so neither always runs on a warmer cache
                order = ("ours", "base") if repeat % 2 == 0 else ("base", "ours")
                for side in order:
                    if side == "ours":
                        log(f"  {tier}: export/verify/import, repeat {repeat + 1}/{repeats}")
                        ours.append(ours_once(run, tenant_id, tier, repeat, check_round_trip=repeat == 0))
                    else:
                        log(f"  {tier}: baseline, repeat {repeat + 1}/{repeats}")
                        base.append(baseline_once(run, tenant, schema, scratch_table, n))
            db.session.remove()
        results[tier] = (ours, base)
    return results


def print_exports(results, n, repeats):
    print(f"\n2. export and import of a tenant with {n:,} orders; median of {repeats} (min-max); rows/s")
    for tier, (ours, base) in results.items():
        rows, base_rows = ours[0]["rows"], base[0][3]
        series = {
            "baseline dump": [b[0] for b in base],
            "write_export": [f["export"] for f in ours],
            "verify_export": [f["verify"] for f in ours],
            "baseline restore": [b[1] for b in base],
            "import: load_rows": [f["load"] for f in ours],
            "import: the whole \"load data\" step": [f["load_step"] for f in ours],
            "import: request_import + job": [f["request"] + f["job"] for f in ours],
        }
        against = {"write_export": "baseline dump", "import: load_rows": "baseline restore",
                   "import: the whole \"load data\" step": "baseline restore",
                   "import: request_import + job": "baseline restore"}
        base_name = ("psql: COPY (select ... where tenant_id = ...) TO STDOUT, then COPY ... FROM STDIN"
                     if tier == "pool" else "pg_dump --data-only -t <schema>.orders, then psql -1 -f")
        print(f"\n{tier} tenant: ours {rows:,} rows (all tables); baseline {base_rows:,} rows ({base_name})")
        print(f"{'':<38}{'s median':>10}{'s min-max':>16}{'rows/s':>11}{'ours/baseline':>15}")
        for name, seconds in series.items():
            count = base_rows if name.startswith("baseline") else rows
            med = statistics.median(seconds)
            line = (f"{name:<38}{med:>10.3f}{f'{min(seconds):.2f}-{max(seconds):.2f}':>16}"
                    f"{rate(count, med):>11,.0f}")
            if name in against:
                line += f"{rate(count, med) / rate(base_rows, statistics.median(series[against[name]])):>15.3f}"
            print(line)
        round_trip = [f["round_trip"] for f in ours if "round_trip" in f]
        print(f"size: export zip {statistics.median(f['bytes'] for f in ours) / 1e6:.1f} MB, "
              f"baseline dump {statistics.median(b[2] for b in base) / 1e6:.1f} MB (uncompressed); "
              f"a re-export of the imported tenant has the same counts and checksums: "
              f"{round_trip[0] if round_trip else 'not checked'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="tenants provisioned per tier")
    parser.add_argument("--orders", type=int, default=100_000, help="orders of the exported tenant")
    parser.add_argument("--repeats", type=int, default=3, help="export/import and baseline repeats")
    parser.add_argument("--export-tiers", default="pool,bridge", help="tiers of the exported tenants")
    parser.add_argument("--skip-provisioning", action="store_true")
    parser.add_argument("--skip-exports", action="store_true")
    args = parser.parse_args()
    export_tiers = [t for t in args.export_tiers.split(",") if t]
    for tool in ("pg_dump", "psql"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not on PATH")

    run = Run()
    log(f"run {run.hex}: database {run.database}, prefix {run.prefix}")
    provisioned = results = None
    started = time.perf_counter()
    try:
        run.open()
        if not args.skip_provisioning:
            log("provisioning")
            provisioned = bench_provisioning(run, args.rounds)
        if not args.skip_exports:
            log("export and import")
            results = bench_exports(run, export_tiers, args.orders, args.repeats)
    finally:
        log("cleaning up")
        run.close()
    log(f"done in {time.perf_counter() - started:.0f} s")
    print(f"lifecycle bench: rounds={args.rounds} orders={args.orders} repeats={args.repeats}")
    if provisioned:
        times, steps, commits, latency = provisioned
        print_provisioning(times, steps, args.rounds, commits, latency)
    if results:
        print_exports(results, args.orders, args.repeats)


if __name__ == "__main__":
    main()
