"""The bridge tier at 1,000 schemas against 10 (the baseline), in one throwaway database.

For each size (10, then 1,000 bridge tenants, each with its own schema, role and
registry row) it measures:

  (d) a tenant page: GET /t/<slug>/orders through the Flask test client, signed in as a
      user of a real bridge tenant (made by `create_tenant`); p50/p99. Each request is
      followed by the same page of a pool tenant (a control: it shares the machine's
      load but not the bridge schemas, so the bridge/pool ratio cancels load drift on a
      shared machine). And the memory of one app-role backend (pg_backend_memory_contexts):
      fresh, after one tenant's page queries (users + orders), and after those of every
      tenant once on the same connection;
  (a) bridge provisioning: `create_storage(uuid4(), 'bridge')`, timed one by one (the
      new schemas are dropped again, so the population stays at the size); and each SQL
      statement of it, to show which ones grow with the size of the catalog;
  (b) a no-op upgrade: `upgrade.plan(everyone=True)` + `upgrade.run([])` (the registry
      says everyone is current); and, for comparison, verifying every schema for real:
      a transaction running alembic's upgrade on an up-to-date schema, (i) as the runner
      does it (a new owner engine per schema) and (ii) on one reused connection; at the
      large size on an evenly spread sample of the schemas (--verify-sample).

At the large size only:

  (c) a one-column migration (a temporary copy of migrations/tenant/ with a revision
      "tbench" adding a nullable column to `orders`) over every schema with `upgrade.run`,
      jobs=1; then every schema is downgraded back to the head (not timed into the figure)
      and the same migration is run again with jobs=2.

Times are measured and printed with ratios against the baseline; nothing is asserted.
Everything is dropped at the end (database, roles with the run's prefix, Redis keys).

    .venv/bin/python bench/tiers.py                 # full: 1,000 schemas (about 5-10 min)
    .venv/bin/python bench/tiers.py --schemas 50    # quick check
"""
import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import PASSWORD, ROOT, Throwaway, csrf_token, percentile  # noqa: E402
from alembic import command  # noqa: E402
from sqlalchemy import event, select, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from portal.dbsetup import alembic_config, migrate_schema, owner_engine, tenant_head  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.lifecycle import upgrade  # noqa: E402
from portal.lifecycle.provisioning import create_tenant  # noqa: E402
from portal.lifecycle.storage import create_storage, drop_storage  # noqa: E402
from portal.orders.services import latest_orders  # noqa: E402
from portal.services.passwords import hash_password  # noqa: E402
from portal.tenancy.context import TenantRef, tenant_context  # noqa: E402
from portal.tenancy.data import Order, TenantUser  # noqa: E402
from portal.tenancy.names import schema_name  # noqa: E402
from portal.tenancy.placement import tenant_transaction  # noqa: E402

MEMORY_SQL = text(
    "select pg_backend_pid(), sum(total_bytes), "
    "sum(total_bytes) filter (where name = 'CacheMemoryContext' or parent = 'CacheMemoryContext') "
    "from pg_backend_memory_contexts")

T0002 = '''"""Bench only: one nullable column on orders.

Revision ID: tbench
Revises: {head}
"""
import sqlalchemy as sa
from alembic import op

revision = "tbench"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("orders", sa.Column("bench_note", sa.Text, nullable=True),
                  schema=op.get_context().version_table_schema)


def downgrade():
    op.drop_column("orders", "bench_note", schema=op.get_context().version_table_schema)
'''


def log(message):
    print(message, file=sys.stderr, flush=True)


def ms(seconds):
    return seconds * 1e3


class World:
    """The bench's bridge tenants: one real tenant with a user (for the page), and fillers."""

    def __init__(self, app, owner_url):
        self.app = app
        self.owner = owner_engine(owner_url)
        self.refs = []
        self.page_tenant = None
        self.pool_tenant = None
        self.head = tenant_head()

    def make_page_tenants(self):
        self.page_tenant = self._page_tenant("bench-page", "bridge")
        self.refs.append(self.page_tenant)
        self.pool_tenant = self._page_tenant("bench-pool", "pool")

    def _page_tenant(self, slug, tier):
        with self.app.app_context():
            tenant, _token = create_tenant(slug, f"Bench {tier}", "enterprise", f"admin@{slug}.example", tier=tier)
            ref = TenantRef.of(tenant)
            with tenant_transaction(ref) as session:
                session.add(TenantUser(tenant_id=ref.id, email=f"reader@{slug}.example", name="Reader",
                                       role="member", password_hash=hash_password(PASSWORD)))
                session.add_all(Order(tenant_id=ref.id, number=n, customer=f"Customer {n}", amount_cents=100 * n,
                                      status="open") for n in range(1, 31))
            db.session.remove()
        return ref

    def grow_to(self, size):
        """Bridge tenants (storage and registry rows) until there are `size` of them."""
        new = []
        started = time.perf_counter()
        with self.app.app_context():
            while len(self.refs) + len(new) < size:
                tenant_id = uuid.uuid4()
                create_storage(tenant_id, "bridge")
                slug = f"filler-{tenant_id.hex[:12]}"
                new.append(TenantRef(id=tenant_id, slug=slug, name=f"Filler {slug}", status="active",
                                     tier="bridge", plan_code="basic"))
                if len(new) % 100 == 0:
                    log(f"  {len(self.refs) + len(new)} bridge schemas ({time.perf_counter() - started:.0f} s)")
        if new:
            with self.owner.begin() as conn:
                conn.execute(text(
                    "insert into registry.tenants (id, slug, name, status, tier, plan_code, settings, schema_version) "
                    "values (:id, :slug, :name, 'active', 'bridge', 'basic', '{}', :v)"),
                    [{"id": r.id, "slug": r.slug, "name": r.name, "v": self.head} for r in new])
                conn.execute(text("analyze registry.tenants"))
        self.refs.extend(new)
        return time.perf_counter() - started, len(new)

    def count_schemas(self):
        with self.owner.connect() as conn:
            return conn.execute(text("select count(*) from pg_namespace where nspname like 't\\_%'")).scalar_one()


# -- (d) a tenant page and a backend's memory ---------------------------------------------
def sign_in(app, tenant):
    client = app.test_client()
    prefix = f"/t/{tenant.slug}"
    page = client.get(f"{prefix}/login")
    response = client.post(f"{prefix}/login", data={
        "email": f"reader@{tenant.slug}.example", "password": PASSWORD,
        "csrf_token": csrf_token(page.get_data(as_text=True)),
    })
    if response.status_code != 302:
        raise RuntimeError(f"sign-in failed: {response.status_code}")
    return client


def time_pages(world, requests, warmup):
    """ms per request: (bridge tenant's page, pool tenant's page), requested alternately."""
    pages = [(sign_in(world.app, t), f"/t/{t.slug}/orders") for t in (world.page_tenant, world.pool_tenant)]
    samples = ([], [])
    for i in range(warmup + requests):
        for (client, url), kept in zip(pages, samples, strict=True):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
            if response.status_code != 200 or b"Customer 30" not in response.data:
                raise RuntimeError(f"GET {url}: {response.status_code}")
            if i >= warmup:
                kept.append(ms(elapsed))
    return samples


def page_queries(tenant):
    """What the orders page asks of the tenant's tables: its user (Flask-Login), its orders."""
    with tenant_context(tenant):
        with tenant_transaction() as session:
            session.execute(select(TenantUser).limit(1)).first()
        latest_orders()


def backend_memory(world):
    """Bytes of one fresh app-role backend: (fresh, after one tenant's page queries, after
    those of every bridge tenant once), each as (all contexts, CacheMemoryContext and its
    children)."""
    app = world.app
    with app.app_context():
        db.engine.dispose()  # the next checkout is a new backend, reused below (pool of one idle)
        with db.engine.connect() as conn:
            pid, fresh_all, fresh_cache = conn.execute(MEMORY_SQL).one()
        page_queries(world.page_tenant)
        with db.engine.connect() as conn:
            pid1, one_all, one_cache = conn.execute(MEMORY_SQL).one()
        for ref in world.refs:
            page_queries(ref)
        with db.engine.connect() as conn:
            pid2, every_all, every_cache = conn.execute(MEMORY_SQL).one()
        db.engine.dispose()
    if not pid == pid1 == pid2:
        raise RuntimeError("the memory was read on different backends")
    return {"fresh": (fresh_all, fresh_cache), "one": (one_all, one_cache), "every": (every_all, every_cache)}


# -- (a) provisioning ---------------------------------------------------------------------
class StatementTimes:
    """ms per SQL statement run by any engine in the block, keyed by the statement with
    the tenant's names taken out (so the same statement of each provision is one key)."""

    def __init__(self):
        self.times = defaultdict(list)

    def __enter__(self):
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc):
        event.remove(Engine, "before_cursor_execute", self._before)
        event.remove(Engine, "after_cursor_execute", self._after)

    @staticmethod
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench.started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        started = conn.info.pop("bench.started", None)
        if started is None or statement.startswith("select format("):  # _ddl's quoting, not DDL
            return
        key = re.sub(r"pb[0-9a-f]{8}_", "", re.sub(r"[0-9a-f]{32}", "<id>", " ".join(statement.split())))
        self.times[key[:100]].append(ms(time.perf_counter() - started))

    def medians(self, at_least):
        return {k: statistics.median(v) for k, v in self.times.items() if len(v) >= at_least}


def time_provisioning(app, count):
    """(ms per provision, {statement: median ms})."""
    samples, made = [], []
    statements = StatementTimes()
    with app.app_context():
        try:
            for _ in range(count):
                tenant_id = uuid.uuid4()
                with statements:
                    started = time.perf_counter()
                    create_storage(tenant_id, "bridge")
                    samples.append(ms(time.perf_counter() - started))
                made.append(tenant_id)
        finally:
            for tenant_id in made:
                drop_storage(tenant_id, "bridge")
    return samples, statements.medians(count)


# -- (b) no-op upgrade, and verifying every schema for real -------------------------------
def time_noop_upgrade(app, rounds):
    samples = []
    with app.app_context():
        for _ in range(rounds):
            started = time.perf_counter()
            targets, current, _head = upgrade.plan(everyone=True)
            if targets:
                raise RuntimeError(f"{len(targets)} targets behind: not a no-op")
            upgrade.run(targets, "bench")
            samples.append(time.perf_counter() - started)
            db.session.remove()
    return samples, current


def time_verify(world, sample):
    """Per schema, ms: (i) a new owner engine per schema, as the runner's `_migrate` does;
    (ii) one reused connection, a transaction per schema. On `sample` schemas spread
    evenly over all of them (all when fewer)."""
    url = world.app.config["DATABASE_URL"]
    step = max(1, len(world.refs) // sample)
    refs = world.refs[::step][:sample]
    per_engine, reused = [], []
    with world.app.app_context():
        for ref in refs:
            started = time.perf_counter()
            engine = owner_engine(url)
            try:
                with engine.begin() as conn:
                    migrate_schema(conn, schema_name(ref.id))
            finally:
                engine.dispose()
            per_engine.append(ms(time.perf_counter() - started))
        engine = owner_engine(url)
        try:
            with engine.connect() as conn:
                for ref in refs:
                    started = time.perf_counter()
                    with conn.begin():
                        migrate_schema(conn, schema_name(ref.id))
                    reused.append(ms(time.perf_counter() - started))
        finally:
            engine.dispose()
    return per_engine, reused


# -- (c) a one-column migration, jobs 1 against 2 ----------------------------------------
def migration_scripts(tmp):
    location = os.path.join(tmp, "tenant")
    shutil.copytree(os.path.join(ROOT, "migrations", "tenant"), location,
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(os.path.join(location, "versions", "9999_bench_column.py"), "w") as f:
        f.write(T0002.replace("{head}", tenant_head()))
    return location


def run_migration(world, location, jobs):
    app = world.app
    with app.app_context():
        targets, current, head = upgrade.plan(everyone=True, script_location=location)
        targets = [t for t in targets if t.tier == "bridge"]  # not the pool control's tenant_data
        if head != "tbench" or current != 0 or len(targets) != len(world.refs):
            raise RuntimeError(f"unexpected plan: head {head}, {current} current, {len(targets)} targets")
        stamps = []  # when each result had been recorded (after its _record)
        started = time.perf_counter()
        record = upgrade.run(targets, "bench", jobs=jobs, script_location=location,
                             on_result=lambda result: stamps.append((time.perf_counter(), result.seconds)))
        total = time.perf_counter() - started
        done, failed = record.done, record.failed
        errors = [r["error"] for r in record.results if not r["ok"]][:3]
        target_ms = [r["ms"] for r in record.results]
        results_bytes = db.session.execute(
            text("select octet_length(results::text) from registry.upgrade_runs where id = :id"),
            {"id": record.id}).scalar_one()
        db.session.remove()
    if failed:
        raise RuntimeError(f"jobs={jobs}: {failed} targets failed, e.g. {errors}")
    # With one job, the gap between two results less the target's own time is what the
    # runner spends on each result (recording it): at the start and at the end of the run.
    gaps = [ms(t - t0 - seconds) for (t0, _), (t, seconds) in zip(stamps, stamps[1:], strict=False)]
    edge = max(1, len(gaps) // 10)
    overhead = (statistics.median(gaps[:edge]), statistics.median(gaps[-edge:])) if jobs == 1 and gaps else None
    return {"total": total, "done": done, "target_ms": target_ms, "jobs": jobs, "results_bytes": results_bytes,
            "overhead": overhead}


def downgrade_all(world, location):
    started = time.perf_counter()
    with world.app.app_context():
        engine = owner_engine(world.app.config["DATABASE_URL"])
        try:
            with engine.connect() as conn:
                for ref in world.refs:
                    with conn.begin():
                        command.downgrade(alembic_config("tenant", conn, schema=schema_name(ref.id),
                                                         script_location=location), tenant_head())
        finally:
            engine.dispose()
    with world.owner.begin() as conn:
        conn.execute(text("update registry.tenants set schema_version = 't0001' where tier = 'bridge'"))
    return time.perf_counter() - started


# -- the run ------------------------------------------------------------------------------
def measure_size(world, size, args):
    figures = {}
    log(f"growing to {size} bridge schemas ...")
    figures["grow"] = world.grow_to(size)
    figures["schemas"] = world.count_schemas()
    log(f"[{figures['schemas']} schemas] tenant pages ...")
    figures["page"] = time_pages(world, args.requests, args.warmup)
    log(f"[{figures['schemas']} schemas] backend memory ...")
    figures["memory"] = backend_memory(world)
    log(f"[{figures['schemas']} schemas] provisioning x{args.provisions} ...")
    figures["provision"] = time_provisioning(world.app, args.provisions)
    log(f"[{figures['schemas']} schemas] no-op upgrade x{args.noop_rounds} ...")
    figures["noop"] = time_noop_upgrade(world.app, args.noop_rounds)
    log(f"[{figures['schemas']} schemas] verifying schemas for real ...")
    figures["verify"] = time_verify(world, args.verify_sample)
    return figures


def _p(samples, q):
    return statistics.median(samples) if q == 50 else percentile(samples, q)


def report(base, big, migration, args):
    b, n = base["schemas"], big["schemas"]
    print(f"\nbridge tier: {n} schemas against {b} (the baseline); times in ms unless stated\n")

    print(f"(a) provisioning a bridge tenant (create_storage), {args.provisions} each")
    (pb, sb), (pn, sn) = base["provision"], big["provision"]
    print(f"    {'schemas':<10}{'p50':>9}{'p95':>9}")
    print(f"    {b:<10}{_p(pb, 50):>9.1f}{_p(pb, 95):>9.1f}")
    print(f"    {n:<10}{_p(pn, 50):>9.1f}{_p(pn, 95):>9.1f}")
    print(f"    ratio p50 {_p(pn, 50) / _p(pb, 50):.2f}, p95 {_p(pn, 95) / _p(pb, 95):.2f}   (goal <= 2)")
    common = set(sb) & set(sn)
    # Load on a shared machine slows every statement alike; the median ratio measures it.
    load = statistics.median(sn[k] / sb[k] for k in common)
    print(f"    its {len(common)} statements, sum of medians: {sum(sb[k] for k in common):.1f} -> "
          f"{sum(sn[k] for k in common):.1f} ms; median ratio {load:.2f} (the machine's load)")
    print("    those that grew most beyond that (of those taking >= 2 ms):")
    grown = sorted((k for k in common if sn[k] >= 2), key=lambda k: sb[k] / sn[k])[:3]
    for key in grown:
        print(f"    {sb[key]:>8.2f} -> {sn[key]:>6.2f} ms (x{sn[key] / sb[key]:.1f})  {key[:72]}")

    print(f"\n(b) no-op upgrade: plan(everyone) + run([]), median of {args.noop_rounds}")
    (sb, cb), (sn, cn) = base["noop"], big["noop"]
    tb, tn = statistics.median(sb), statistics.median(sn)
    print(f"    {b:<10}{ms(tb):>9.1f} total ({cb} tenants, all current)")
    print(f"    {n:<10}{ms(tn):>9.1f} total ({cn} tenants, all current): {ms(tn) / cn * 1e3:.0f} us per schema, "
          f"{ms(tn - tb) / (cn - cb) * 1e3:.0f} us per extra schema   (goal <= 10 ms per schema)")
    print("    verifying schemas for real (a transaction running alembic's upgrade on an up-to-date schema):")
    print(f"    {'schemas':<10}{'sampled':>8}{'new engine p50':>16}{'p95':>8}{'reused conn p50':>17}{'p95':>8}"
          f"{'all, new engine, s':>20}")
    for size, fig in ((b, base), (n, big)):
        per_engine, reused = fig["verify"]
        print(f"    {size:<10}{len(per_engine):>8}{_p(per_engine, 50):>16.1f}{_p(per_engine, 95):>8.1f}"
              f"{_p(reused, 50):>17.1f}{_p(reused, 95):>8.1f}{statistics.mean(per_engine) * size / 1e3:>20.1f}")

    if migration:
        one, two, downgrade_s = migration
        print(f"\n(c) one-column migration over {one['done']} schemas with upgrade.run "
              f"(the same schemas, downgraded in between: {downgrade_s:.1f} s, not counted)")
        print(f"    {'':<8}{'total s':>8}{'ms/schema':>10}{'target p50':>11}{'p95':>7}{'sum of targets s':>18}"
              f"{'outside targets s':>19}")
        for fig in (one, two):
            in_targets = sum(fig["target_ms"]) / 1e3
            print(f"    jobs={fig['jobs']:<3}{fig['total']:>8.1f}{ms(fig['total']) / fig['done']:>10.1f}"
                  f"{_p(fig['target_ms'], 50):>11.1f}{_p(fig['target_ms'], 95):>7.1f}{in_targets:>18.1f}"
                  f"{fig['total'] - in_targets / fig['jobs']:>19.1f}")
        print(f"    speed-up jobs=2 over jobs=1: {one['total'] / two['total']:.2f}x")
        if one["overhead"]:
            print(f"    jobs=1, the runner's own time per target (recording the result): "
                  f"{one['overhead'][0]:.1f} ms in the first tenth of the run, {one['overhead'][1]:.1f} ms in the last")
        size = one["results_bytes"]
        print(f"    upgrade_runs.results at the end: {size / 1024:.0f} KiB of JSON, rewritten after every target: "
              f"about {size * (one['done'] + 1) / 2 / 2**20:.0f} MiB written per run")

    print(f"\n(d) GET /t/<slug>/orders, signed in, 30 orders; {args.requests} requests after {args.warmup} warm-up,")
    print("    the bridge tenant's page and a pool tenant's page (the control) requested alternately")
    print(f"    {'schemas':<10}{'bridge p50':>11}{'p99':>8}{'pool p50':>10}{'p99':>8}{'bridge/pool p50':>17}{'p99':>7}")
    for size, fig in ((b, base), (n, big)):
        br, po = fig["page"]
        print(f"    {size:<10}{_p(br, 50):>11.2f}{_p(br, 99):>8.2f}{_p(po, 50):>10.2f}{_p(po, 99):>8.2f}"
              f"{_p(br, 50) / _p(po, 50):>17.2f}{_p(br, 99) / _p(po, 99):>7.2f}")
    (bb, bp), (nb, np_) = base["page"], big["page"]
    for q in (50, 99):
        raw = _p(nb, q) / _p(bb, q)
        control = _p(np_, q) / _p(bp, q)
        print(f"    bridge p{q} {n} / {b}: {raw:.2f} (pool control {control:.2f}; normalised {raw / control:.2f})"
              + ("   (goal p99 <= 1.5)" if q == 99 else ""))
    print("    one app-role backend's memory, KiB (all contexts / CacheMemoryContext and its children):")
    print(f"    {'schemas':<10}{'fresh':>15}{'one tenant':>15}{'every tenant':>17}")
    for size, fig in ((b, base), (n, big)):
        mem = fig["memory"]
        cells = [f"{int(mem[k][0]) // 1024} / {int(mem[k][1]) // 1024}" for k in ("fresh", "one", "every")]
        print(f"    {size:<10}{cells[0]:>15}{cells[1]:>15}{cells[2]:>17}")
    mem = big["memory"]
    print(f"    after one tenant, {n} / {b}: {mem['one'][0] / base['memory']['one'][0]:.2f}; "
          f"each further tenant touched adds {(mem['every'][0] - mem['one'][0]) / max(1, n - 1) / 1024:.1f} KiB")
    g = big["grow"]
    print(f"\n(made {g[1]} bridge schemas for the large size in {g[0]:.0f} s, {ms(g[0]) / max(1, g[1]):.0f} ms each)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schemas", type=int, default=1000, help="bridge schemas at the large size")
    parser.add_argument("--baseline", type=int, default=10, help="bridge schemas at the baseline")
    parser.add_argument("--provisions", type=int, default=20, help="timed provisions per size")
    parser.add_argument("--requests", type=int, default=300, help="timed page requests per size")
    parser.add_argument("--warmup", type=int, default=30, help="untimed page requests first")
    parser.add_argument("--noop-rounds", type=int, default=5)
    parser.add_argument("--verify-sample", type=int, default=250, help="schemas verified for real per size")
    parser.add_argument("--skip-migration", action="store_true", help="leave out (c)")
    args = parser.parse_args()

    started = time.perf_counter()
    bench = Throwaway(ARGON2_TIME_COST=1, ARGON2_MEMORY_COST=8192)
    with bench as app:
        with bench.admin.connect() as conn:
            version = conn.execute(text("show server_version")).scalar_one()
        # The application role may read its own backend's memory contexts (this database only).
        owner = owner_engine(bench.owner_url)
        with owner.begin() as conn:
            role = conn.dialect.identifier_preparer.quote(app.config["PORTAL_APP_ROLE"])
            conn.execute(text(f"grant select on pg_catalog.pg_backend_memory_contexts to {role}"))
            conn.execute(text(f"grant execute on function pg_catalog.pg_get_backend_memory_contexts() to {role}"))
        owner.dispose()
        world = World(app, bench.owner_url)
        world.make_page_tenants()
        base = measure_size(world, args.baseline, args)
        big = measure_size(world, args.schemas, args)
        migration = None
        if not args.skip_migration:
            with tempfile.TemporaryDirectory(prefix="portal-bench-migrations-") as tmp:
                location = migration_scripts(tmp)
                log(f"[{big['schemas']} schemas] migration, jobs=1 ...")
                one = run_migration(world, location, jobs=1)
                log(f"[{big['schemas']} schemas] downgrading every schema ...")
                downgrade_s = downgrade_all(world, location)
                log(f"[{big['schemas']} schemas] migration, jobs=2 ...")
                two = run_migration(world, location, jobs=2)
                migration = (one, two, downgrade_s)
        world.owner.dispose()
    print(f"PostgreSQL {version}; {os.cpu_count()} CPUs; whole run {time.perf_counter() - started:.0f} s")
    report(base, big, migration, args)


if __name__ == "__main__":
    main()
