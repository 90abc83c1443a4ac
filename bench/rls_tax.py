"""RLS tax of the pool tier: what row-level security costs a small indexed read.

Builds a throwaway database (and application role) on the server named by
PORTAL_BENCH_DATABASE_URL, else PORTAL_TEST_DATABASE_URL, else the local default,
prepares it with portal.dbsetup exactly as a deploy does, loads tenants and orders,
and times "the latest 50 orders of one tenant", one transaction each, interleaved
over random tenants:

  B  the owner (superuser, RLS bypassed) with an explicit WHERE tenant_id = %s:
     the baseline, what the query costs without RLS;
  A  the application role under RLS, `set_config('app.tenant_id', ..)` sent in the
     same round trip as the query (as portal/tenancy/placement.py does);
  C  the same as A, but set_config sent as its own statement (one more round trip);
  D  the owner as in B, with the same set_config piggybacked as in A: no RLS, so
     A - D is the policy's own cost and D - B the extra statement's;
  S  on the owner's connection (the baseline's own backend), the role switched to the
     application role for the transaction (`set_config('role', .., true)`, piggybacked
     as the bridge tier does): RLS as in A. A and B run on two backends, and on a small
     machine where a backend happens to run moves its time by more than the tax
     (measured: 0.78 to 1.48 for A/B from one pair of connections to the next); S/B
     compares on one backend, at the price of the role switch (~15 µs).

Raw psycopg2 connections, one per role (a fresh pair for each of --sessions slices of
the rounds), in their default (transactional) mode: like SQLAlchemy on psycopg2, each
transaction is BEGIN, the statement(s), COMMIT. So A, B and D are three round trips
each, C four. The database and the role are dropped at the end, also on failure or
Ctrl-C.

    .venv/bin/python bench/rls_tax.py                     # 10,000 tenants, 1,000,000 orders
    .venv/bin/python bench/rls_tax.py --tenants 100 --orders 10000 --iterations 200
"""
import argparse
import gc
import math
import os
import platform
import random
import secrets
import sys
import time

import psycopg2
from sqlalchemy.engine import make_url

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from portal.dbsetup import setup_database  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
GOAL = 1.10

COLUMNS = "id, number, customer, amount_cents, status, created_at"
SET_TENANT = "select set_config('app.tenant_id', %s, true)"
LATEST_RLS = f"select {COLUMNS} from tenant_data.orders order by created_at desc limit 50"
LATEST_OWNER = f"select {COLUMNS} from tenant_data.orders where tenant_id = %s order by created_at desc limit 50"
ORDERS_BATCH = 100_000


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000, help="tenants to load (default 10,000)")
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders to load (default 1,000,000)")
    parser.add_argument("--iterations", type=int, default=2_000, help="timed transactions per variant (default 2,000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed rounds in all (default 200)")
    parser.add_argument("--sessions", type=int, default=4,
                        help="fresh pairs of connections the rounds are split over (default 4)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the choice of tenants")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.orders < 0 or args.iterations < 1 or args.warmup < 0 or args.sessions < 1:
        parser.error("--tenants, --iterations and --sessions must be positive, --orders and --warmup not negative")
    if args.sessions > args.iterations:
        parser.error("--sessions may not exceed --iterations")
    return args


def server_url():
    raw = os.environ.get("PORTAL_BENCH_DATABASE_URL") or os.environ.get("PORTAL_TEST_DATABASE_URL") or DEFAULT_URL
    return make_url(raw).set(drivername="postgresql")


def dsn(url):
    """A libpq URI (psycopg2.connect takes it as is)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def connect(url, autocommit=False):
    conn = psycopg2.connect(dsn(url), application_name="portal-bench-rls-tax")
    conn.autocommit = autocommit
    return conn


def log(message):
    print(message, file=sys.stderr, flush=True)


# --- the throwaway database --------------------------------------------------------


class Bench:
    def __init__(self, url):
        run_id = secrets.token_hex(5)
        self.admin_url = url
        self.database = f"portal_bench_{run_id}"
        self.role = f"portal_bench_app_{run_id}"
        # A password, so the role can log in on servers without trust authentication.
        self.password = secrets.token_urlsafe(24)
        self.owner_url = url.set(database=self.database)
        self.app_url = self.owner_url.set(username=self.role, password=self.password)

    def _admin(self, sql):
        conn = connect(self.admin_url, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create(self):
        conn = connect(self.admin_url, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("select rolsuper or rolbypassrls from pg_roles where rolname = current_user")
                if not cur.fetchone()[0]:
                    raise SystemExit(
                        "the bench connects as the owner for its baseline, which must bypass RLS: "
                        "use a superuser (or BYPASSRLS) role in PORTAL_BENCH_DATABASE_URL"
                    )
                cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            conn.close()

    def prepare(self):
        setup_database({
            "DATABASE_URL": self.owner_url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False),
            "PORTAL_APP_ROLE": self.role,
            "PORTAL_APP_PASSWORD": self.password,
        })

    def drop(self):
        self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self._admin(f'DROP ROLE IF EXISTS "{self.role}"')


def load(owner, tenants, orders):
    """Tenants, then orders in batches. Orders arrive in time order with their tenants
    interleaved (a deterministic hash of the row number picks the tenant), as they would
    in a shared table: one tenant's rows are spread over the whole heap."""
    with owner.cursor() as cur:
        cur.execute("set synchronous_commit = off")
        cur.execute(
            "insert into registry.tenants (id, slug, name, status, tier, plan_code) "
            "select gen_random_uuid(), 'bench-' || lpad(g::text, 5, '0'), 'Bench tenant ' || g, "
            "'active', 'pool', 'basic' from generate_series(1, %s) g",
            (tenants,),
        )
        cur.execute(
            "create temp table bench_tenants as "
            "select (row_number() over (order by slug) - 1)::int as n, id from registry.tenants"
        )
        cur.execute("alter table bench_tenants add primary key (n)")
        cur.execute("analyze bench_tenants")
        owner.commit()
        for low in range(1, orders + 1, ORDERS_BATCH):
            high = min(low + ORDERS_BATCH - 1, orders)
            cur.execute(
                "insert into tenant_data.orders "
                "(tenant_id, id, number, customer, amount_cents, status, created_at) "
                "select t.id, gen_random_uuid(), s.g, 'Customer ' || mod(s.g, 997), mod(s.g::bigint * 7919, 100000), "
                "(array['open', 'paid', 'shipped', 'cancelled'])[1 + mod(s.g, 4)], "
                "now() - interval '365 days' + s.g * (interval '365 days' / %(orders)s) "
                "from (select g, mod(hashint4(g)::bigint + 2147483648, %(tenants)s)::int as n "
                "      from generate_series(%(low)s, %(high)s) g) s "
                "join bench_tenants t on t.n = s.n",
                {"orders": orders, "tenants": tenants, "low": low, "high": high},
            )
            owner.commit()
            log(f"  orders {high:>10,} / {orders:,}")
    owner.autocommit = True
    with owner.cursor() as cur:
        cur.execute("vacuum (analyze) registry.tenants")
        cur.execute("vacuum (analyze) tenant_data.orders")
        cur.execute("checkpoint")
        try:
            # Read the table and its indexes into shared buffers, so the first timed
            # rounds do not pay for the disk (skipped where pg_prewarm is not installed).
            cur.execute("create extension if not exists pg_prewarm")
            cur.execute(
                "select pg_prewarm(c.oid::regclass) from pg_class c "
                "join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = 'tenant_data' and c.relkind in ('r', 'i')"
            )
        except psycopg2.Error as error:
            log(f"  (no prewarm: {error.pgerror or error})")
    owner.autocommit = False


# --- the three variants ------------------------------------------------------------


def run_a(app, tenant_id):
    """RLS, set_config piggybacked: BEGIN, one round trip, COMMIT."""
    with app.cursor() as cur:
        cur.execute(f"{SET_TENANT}; {LATEST_RLS}", (tenant_id,))
        rows = cur.fetchall()
    app.commit()
    return rows


def run_b(owner, tenant_id):
    """No RLS (superuser), explicit filter: BEGIN, one round trip, COMMIT."""
    with owner.cursor() as cur:
        cur.execute(LATEST_OWNER, (tenant_id,))
        rows = cur.fetchall()
    owner.commit()
    return rows


def run_d(owner, tenant_id):
    """No RLS (superuser), explicit filter, set_config piggybacked as in A."""
    with owner.cursor() as cur:
        cur.execute(f"{SET_TENANT}; {LATEST_OWNER}", (tenant_id, tenant_id))
        rows = cur.fetchall()
    owner.commit()
    return rows


def run_s(owner, tenant_id, role):
    """On the owner's connection, the application role for the transaction: RLS as in A."""
    with owner.cursor() as cur:
        cur.execute(f"{SET_TENANT}, set_config('role', %s, true); {LATEST_RLS}", (tenant_id, role))
        rows = cur.fetchall()
    owner.commit()
    return rows


def run_c(app, tenant_id):
    """RLS, set_config as its own statement: BEGIN, two round trips, COMMIT."""
    with app.cursor() as cur:
        cur.execute(SET_TENANT, (tenant_id,))
        cur.execute(LATEST_RLS)
        rows = cur.fetchall()
    app.commit()
    return rows


VARIANTS = {
    "B": ("owner, WHERE tenant_id = %s (baseline)", run_b),
    "D": ("owner, WHERE, + set_config piggybacked", run_d),
    "A": ("app role, RLS, set_config piggybacked", run_a),
    "C": ("app role, RLS, set_config own round trip", run_c),
    "S": ("owner's connection as the app role, RLS", run_s),
}


def plan_summary(cur, sql, params):
    cur.execute("explain (format json) " + sql, params)
    plan = cur.fetchone()[0][0]["Plan"]
    nodes = []
    while plan is not None:
        label = plan["Node Type"]
        if plan.get("Scan Direction") == "Backward":
            label += " Backward"
        if "Index Name" in plan:
            label += f" using {plan['Index Name']} ({plan.get('Index Cond', '')})"
        elif "Relation Name" in plan:
            label += f" on {plan['Relation Name']}"
        nodes.append(label)
        children = [p for p in plan.get("Plans", []) if p.get("Parent Relationship") != "InitPlan"]
        plan = children[0] if children else None
    return " -> ".join(nodes)


def plans(app, owner, tenant_id):
    with app.cursor() as cur:
        cur.execute(SET_TENANT, (tenant_id,))
        a = plan_summary(cur, LATEST_RLS, None)
    app.rollback()
    with owner.cursor() as cur:
        b = plan_summary(cur, LATEST_OWNER, (tenant_id,))
    owner.rollback()
    return a, b


def measure(app, owner, role, tenant_ids, iterations, warmup, rng):
    """Rounds of one random tenant each; in every round each variant runs once, in a
    fresh random order, so that neither drift nor warm buffers favour one of them."""
    connection = {"A": app, "B": owner, "C": app, "D": owner, "S": owner}
    runs = {name: run for name, (_, run) in VARIANTS.items()}
    runs["S"] = lambda conn, tenant_id: run_s(conn, tenant_id, role)
    timings = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for round_no in range(warmup + iterations):
        if round_no == warmup:
            gc.collect()
        tenant_id = rng.choice(tenant_ids)
        rng.shuffle(names)
        results = {}
        for name in names:
            run = runs[name]
            started = time.perf_counter_ns()
            results[name] = run(connection[name], tenant_id)
            elapsed = time.perf_counter_ns() - started
            if round_no >= warmup:
                timings[name].append(elapsed / 1000)
        if round_no < warmup or round_no % 97 == 0:
            # RLS must give exactly what the explicit filter gives: same rows, same order.
            if not results["B"] or any(rows != results["B"] for rows in results.values()):
                raise SystemExit(f"variants disagree for tenant {tenant_id}: RLS is not doing what the bench assumes")
    return timings


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# --- the report --------------------------------------------------------------------


def load_average():
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average unknown"


def report(args, timings, ratios, server_version, plan_a, plan_b, load_seconds, load_before):
    stats = {n: (percentile(t, 50), percentile(t, 99)) for n, t in timings.items()}
    b50, b99 = stats["B"]
    print()
    print(f"RLS tax, pool tier: {args.tenants:,} tenants, {args.orders:,} orders, "
          f"{args.iterations:,} transactions per variant after {args.warmup:,} warm-up rounds, "
          f"over {args.sessions} pairs of connections")
    print(f"PostgreSQL {server_version}; Python {platform.python_version()}, "
          f"psycopg2 {psycopg2.__version__.split()[0]}; "
          f"{os.cpu_count()} CPUs; data loaded in {load_seconds:.0f} s")
    print(f"machine: {load_before} before the timed rounds, {load_average()} after")
    print()
    header = (f"{'':3}{'latest 50 orders of one tenant, one transaction':<46}"
              f"{'p50 µs':>9}{'p99 µs':>9}{'p50/B':>8}{'p99/B':>8}")
    print(header)
    print("-" * len(header))
    for name in ("B", "D", "A", "C", "S"):
        p50, p99 = stats[name]
        print(f"{name:<3}{VARIANTS[name][0]:<46}{p50:>9.0f}{p99:>9.0f}{p50 / b50:>8.3f}{p99 / b99:>8.3f}")
    print("-" * len(header))
    a50, a99 = stats["A"]
    c50, c99 = stats["C"]
    d50, d99 = stats["D"]
    def verdict(ratio):
        return "met" if ratio <= GOAL else "NOT met"

    print(f"RLS tax A/B: p50 {a50 / b50:.3f} ({verdict(a50 / b50)}), p99 {a99 / b99:.3f} ({verdict(a99 / b99)})"
          f"   goal <= {GOAL:.2f}")
    print("A/B p50 of each pair of connections: " + ", ".join(f"{ratio:.3f}" for ratio, _ in ratios))
    s50, s99 = stats["S"]
    print(f"on the baseline's own backend, S/B: p50 {s50 / b50:.3f} ({verdict(s50 / b50)}), p99 {s99 / b99:.3f}; "
          "of each pair: " + ", ".join(f"{same:.3f}" for _, same in ratios))
    print(f"of which, p50: the set_config statement D - B {d50 - b50:.0f} µs, the policy A - D {a50 - d50:.0f} µs")
    print(f"piggyback saves C - A: p50 {c50 - a50:.0f} µs, p99 {c99 - a99:.0f} µs per transaction "
          f"(C/A p50 {c50 / a50:.3f})")
    print()
    print(f"plan A: {plan_a}")
    print(f"plan B: {plan_b}")


def split(total, parts):
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def measure_sessions(bench, tenant_ids, args, rng, opened):
    """The rounds, split over `args.sessions` fresh pairs of connections: on a small
    machine the p50 of one pair depends on where its two backends happen to run, so a
    single pair is a sample of one. Returns the pooled timings and each pair's A/B and S/B p50."""
    timings = {name: [] for name in VARIANTS}
    ratios = []
    for iterations, warmup in zip(split(args.iterations, args.sessions), split(args.warmup, args.sessions),
                                  strict=True):
        app, owner = connect(bench.app_url), connect(bench.owner_url)
        opened.extend((app, owner))
        gc.disable()
        try:
            session = measure(app, owner, bench.role, tenant_ids, iterations, warmup, rng)
        finally:
            gc.enable()
            app.close()
            owner.close()
        for name, values in session.items():
            timings[name].extend(values)
        b50 = percentile(session["B"], 50)
        ratios.append((percentile(session["A"], 50) / b50, percentile(session["S"], 50) / b50))
    return timings, ratios


def main(argv=None):
    args = parse_args(argv)
    rng = random.Random(args.seed)
    bench = Bench(server_url())
    log(f"creating database {bench.database} and role {bench.role}")
    opened = []
    bench.create()
    try:
        bench.prepare()
        owner = connect(bench.owner_url)
        opened.append(owner)
        log(f"loading {args.tenants:,} tenants and {args.orders:,} orders")
        started = time.monotonic()
        load(owner, args.tenants, args.orders)
        load_seconds = time.monotonic() - started
        with owner.cursor() as cur:
            cur.execute("select id::text from registry.tenants t where exists "
                        "(select 1 from tenant_data.orders o where o.tenant_id = t.id)")
            tenant_ids = [row[0] for row in cur.fetchall()]
            cur.execute("show server_version")
            server_version = cur.fetchone()[0].split()[0]
        owner.rollback()
        if not tenant_ids:
            raise SystemExit("no tenant has orders: load some (--orders)")
        app = connect(bench.app_url)
        opened.append(app)
        plan_a, plan_b = plans(app, owner, rng.choice(tenant_ids))
        app.close()
        owner.close()
        log(f"measuring: {args.warmup:,} warm-up rounds, then {args.iterations:,} rounds of A, B, C, D and S, "
            f"over {args.sessions} pairs of connections")
        load_before = load_average()
        timings, ratios = measure_sessions(bench, tenant_ids, args, rng, opened)
        report(args, timings, ratios, server_version, plan_a, plan_b, load_seconds, load_before)
    finally:
        for conn in opened:
            conn.close()
        bench.drop()
        log(f"dropped database {bench.database} and role {bench.role}")


if __name__ == "__main__":
    main()
