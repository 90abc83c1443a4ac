"""Analytics (issue 13): ingest through the real API, the big tenant's dashboard cold and
warm, the staff overview at 10,000 tenants, and how the cold dashboard grows with a
tenant's events — all in one throwaway database, all measured, nothing asserted.

Data (pool tier, loaded as the database owner with INSERT ... SELECT generate_series):
--tenants tenants (enterprise: 2 years of retention, advanced reports) holding --events
events over --days days, one of them (the big tenant) --big of them with 20 event names
and 20,000 users, the others 5 names and 50 users each; then each tenant's user numbers,
daily roll-ups and the registry's events per day built by one SQL aggregation with the
same rules as the ingest (portal/analytics/events.py; tests/analytics check the ingest's
numbers against raw SQL). Growth tenants (--growth) hold that many events each, 90 days,
with users in proportion (one per 50 events).

1. Ingest: gunicorn (wsgi:app, --workers, gthread) on a free port, --clients threads each
   posting batches of --batch events (10 names, 1,000 users, now) with its own keep-alive
   connection, to --ingest-tenants tenants' tokens, until --ingest-events are stored.
   Events/s = events accepted / wall time. Each answer's latency too.
2. The big tenant's dashboard, last 90 days, through the app's test client signed in as
   its admin (the whole request: pipeline, cache, queries, page), --rounds times each
   cold: with the tenant's cache cleared before each request; after a new event stored
   before each (how a dashboard goes cold in use: its cache stale, today's active users
   to work out again); and as a first view (the cache cleared and no day's active users
   kept, as after an import). Warm (served from the cache) --warm-rounds times. p50/p95.
   The queries alone (queries.dashboard) after a new event too.
3. The staff overview page (/admin/analytics) at --tenants tenants, signed in as a
   superadmin, --rounds times, p50/p95.
4. Growth: the cold 90-day dashboard page of each growth tenant, after a new event and
   as a first view, p50/p95.

    .venv/bin/python bench/analytics.py                      # the issue's figures
    .venv/bin/python bench/analytics.py --tenants 500 --events 200000 --big 100000 \\
        --growth 10000,100000 --ingest-events 20000 --rounds 10    # a quick check, ~1 min
"""
import argparse
import http.client
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import PASSWORD, ROOT, Throwaway, csrf_token, percentile  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402

from portal.analytics import queries  # noqa: E402
from portal.analytics.events import store  # noqa: E402
from portal.auth.principals import TenantPrincipal  # noqa: E402
from portal.auth.services import create_staff_user  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.lifecycle.provisioning import create_tenant  # noqa: E402
from portal.plans import services as plan_services  # noqa: E402
from portal.services import cache  # noqa: E402
from portal.services.passwords import hash_password  # noqa: E402
from portal.tenancy.context import TenantRef, tenant_context  # noqa: E402
from portal.tenancy.data import ROLLUP_CHUNK_BITS, TenantUser  # noqa: E402
from portal.tenancy.placement import tenant_session  # noqa: E402
from portal.tokens import services as tokens  # noqa: E402

ACTOR = ("system", None, "bench/analytics.py")
STAFF_EMAIL = "bench@staff.example"


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- data ---------------------------------------------------------------------------------
def make_tenant(app, slug):
    """A real tenant (provisioned), without limits in the way, its admin with PASSWORD;
    returns (ref, API token)."""
    with app.app_context():
        tenant, _ = create_tenant(slug, f"Bench {slug}", "enterprise", f"admin@{slug}.example", tier="pool")
        for limit in ("requests_per_minute", "api_calls_per_day"):
            plan_services.set_override(tenant, f"limit:{limit}", "1000000000" if "day" in limit else "1000000",
                                       None, "bench", ACTOR)
        ref = TenantRef.of(tenant)
        with tenant_session(ref) as session:
            admin = session.execute(select(TenantUser).where(TenantUser.role == "admin")).scalars().first()
            admin.password_hash = hash_password(PASSWORD)
            session.commit()
            principal = TenantPrincipal.of(admin, session)
        with tenant_context(ref):
            _row, token = tokens.create("bench", ["events:write"], None, principal)
        db.session.remove()
    return ref, token


def load_registry(conn, n):
    """`n` tenants in the registry (the bench's own tenants come on top), signed up over
    12 weeks, 3% of them deprovisioned."""
    conn.execute(text("""
        insert into registry.tenants (id, slug, name, status, tier, plan_code, created_at, archived_at)
        select gen_random_uuid(), 'co-' || lpad(i::text, 6, '0'), 'Company ' || i,
               case when i % 33 = 0 then 'archived' else 'active' end, 'pool', 'enterprise',
               now() - (i % 84) * interval '1 day',
               case when i % 33 = 0 then now() - (i % 20) * interval '1 day' end
        from generate_series(1, :n) i"""), {"n": n})


def load_events(conn, tenant_filter, per_tenant, names, users, days, params):
    """`per_tenant` events for each tenant the filter selects, over `days` days."""
    conn.execute(text(f"""
        insert into tenant_data.events (tenant_id, id, name, user_key, properties, occurred_at)
        select t.id, gen_random_uuid(), 'event-' || (i % {names}),
               case when i % 10 = 0 then null else 'u' || ((i::bigint * 7919) % {users}) end,
               jsonb_build_object('plan', case when i % 3 = 0 then 'pro' else 'free' end, 'n', i % 7),
               now() - ((i::bigint * 104729) % ({days} * 86400)) * interval '1 second'
        from registry.tenants t, generate_series(1, {per_tenant}) i
        where {tenant_filter}"""), params)


def build_rollups(conn, tenant_filter, params):
    """User numbers, roll-ups and the registry's events per day for the selected tenants,
    by the ingest's rules (users numbered in the order first seen)."""
    scope = f"tenant_id in (select id from registry.tenants t where {tenant_filter})"
    for table in ("tenant_data.event_users", "tenant_data.event_rollups", "registry.tenant_activity_days"):
        conn.execute(text(f"delete from {table} where {scope}"), params)  # the portal's own events so far
    conn.execute(text(f"""
        insert into tenant_data.event_users (tenant_id, user_key, idx, first_seen)
        select tenant_id, user_key, row_number() over (partition by tenant_id order by min(occurred_at), user_key) - 1,
               min(occurred_at)
        from tenant_data.events where user_key is not null and {scope} group by tenant_id, user_key"""), params)
    conn.execute(text(f"""
        insert into tenant_data.event_rollups (tenant_id, key, day, name, chunk, events, users)
        select tenant_id, day || '|' || chunk || '|' || name, day, name, chunk, events, users
        from (select tenant_id, day, case when grouping(name) = 1 then '' else name end as name, chunk,
                     count(*) as events,
                     bit_or(case when idx is null then z.zero else set_bit(z.zero, idx % {ROLLUP_CHUNK_BITS}, 1) end)
                       as users
              from (select e.tenant_id, cast(e.occurred_at at time zone 'UTC' as date) as day, e.name,
                           coalesce(u.idx / {ROLLUP_CHUNK_BITS}, 0) as chunk, u.idx
                    from tenant_data.events e
                    left join tenant_data.event_users u on u.tenant_id = e.tenant_id and u.user_key = e.user_key
                    where e.{scope}) x
              cross join (select cast(repeat('0', {ROLLUP_CHUNK_BITS}) as bit({ROLLUP_CHUNK_BITS})) as zero) z
              group by grouping sets ((tenant_id, day, name, chunk), (tenant_id, day, chunk))) g"""), params)
    conn.execute(text(f"""
        insert into registry.tenant_activity_days (tenant_id, day, events)
        select tenant_id, cast(occurred_at at time zone 'UTC' as date), count(*)
        from tenant_data.events where {scope} group by 1, 2"""), params)


# -- ingest through gunicorn ----------------------------------------------------------------
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(config, port, workers):
    env = {**os.environ, "DATABASE_URL": config["DATABASE_URL"], "REDIS_URL": config["REDIS_URL"],
           "PORTAL_APP_ROLE": config["PORTAL_APP_ROLE"], "PORTAL_NAME_PREFIX": config["PORTAL_NAME_PREFIX"],
           "PORTAL_REDIS_PREFIX": config["PORTAL_REDIS_PREFIX"], "PORTAL_SECRET_KEY": config["SECRET_KEY"],
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null",
               "--log-level", "warning", "wsgi:app"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/api/v1/status")
            probe.getresponse().read()  # any answer (404: no tenant named) means it serves
            return process
        except OSError:
            time.sleep(0.3)
    stop(process)
    raise RuntimeError("gunicorn did not start")


def stop(process):
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


def ingest(port, tokens_, total, batch, clients):
    """Post batches until `total` events are accepted; returns (seconds, latencies, refused)."""
    sent, lock, latencies, refused = [0], threading.Lock(), [], []
    bodies = [json.dumps({"events": [{"name": f"api-{(k + j) % 10}", "user_id": f"user-{(k * 31 + j) % 1000}",
                                      "properties": {"plan": "pro" if j % 3 else "free"}} for j in range(batch)]})
              for k in range(16)]

    def client(n):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        token = tokens_[n % len(tokens_)]
        k = 0
        while True:
            with lock:
                if sent[0] >= total:
                    return
                sent[0] += batch
            began = time.perf_counter()
            connection.request("POST", "/api/v1/events", body=bodies[k % len(bodies)],
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies.append((time.perf_counter() - began) * 1000)
            if response.status != 202:
                refused.append(response.status)
            k += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, latencies, refused


# -- pages ----------------------------------------------------------------------------------
def tenant_client(app, ref):
    client = app.test_client()
    page = client.get(f"/t/{ref.slug}/login")
    response = client.post(f"/t/{ref.slug}/login", data={
        "email": f"admin@{ref.slug}.example", "password": PASSWORD,
        "csrf_token": csrf_token(page.get_data(as_text=True))})
    if response.status_code != 302:
        raise RuntimeError(f"sign-in on {ref.slug}: {response.status_code}")
    return client


def staff_client(app):
    with app.app_context():
        create_staff_user(STAFF_EMAIL, "superadmin", PASSWORD)
        db.session.remove()
    client = app.test_client()
    page = client.get("/admin/login")
    response = client.post("/admin/login", data={"email": STAFF_EMAIL, "password": PASSWORD,
                                                 "csrf_token": csrf_token(page.get_data(as_text=True))})
    if response.status_code != 302:
        raise RuntimeError(f"staff sign-in: {response.status_code}")
    return client


def timed(fn, rounds, before=None):
    samples = []
    for _ in range(rounds):
        if before:
            before()
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def summary(samples):
    return f"p50 {statistics.median(samples):7.1f} ms   p95 {percentile(samples, 95):7.1f} ms   " \
           f"max {max(samples):7.1f} ms   (n={len(samples)})"


def dashboard_page(app, client, ref, days=90):
    today = datetime.now(timezone.utc).date()
    url = f"/t/{ref.slug}/analytics?start={today - timedelta(days=days - 1)}&end={today}"

    def get():
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code}")
        return response

    def clear():
        with app.app_context():
            cache.clear(ref.id)

    def new_event():
        with app.app_context(), tenant_context(ref):
            store([{"name": "bench.tick", "user_key": None, "properties": {},
                    "occurred_at": datetime.now(timezone.utc)}])

    def forget_what_is_kept():
        clear()
        with app.app_context(), tenant_session(ref) as session:
            for table in ("event_spans", "event_active_days"):
                session.execute(text(f"delete from tenant_data.{table}"))
            session.commit()

    return get, {"cache cleared": clear, "after a new event": new_event, "first view": forget_what_is_kept}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--growth", default="100000,10000000")
    parser.add_argument("--ingest-events", type=int, default=300_000)
    parser.add_argument("--ingest-tenants", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warm-rounds", type=int, default=200)
    args = parser.parse_args()
    logging.getLogger("portal").setLevel(logging.WARNING)  # not every invitation mail kept
    log(f"load average before: {os.getloadavg()}")
    throwaway = Throwaway()
    try:
        app = throwaway.open()
        run(app, throwaway, args)
    finally:
        throwaway.close()
    log(f"load average after: {os.getloadavg()}")


def run(app, throwaway, args):
    big, big_token = make_tenant(app, "big")
    growth = {int(n): make_tenant(app, f"grow-{n}")[0] for n in args.growth.split(",") if n}
    ingest_tenants = [make_tenant(app, f"ingest-{n}") for n in range(args.ingest_tenants)]
    owner = create_engine(throwaway.owner_url)
    began = time.perf_counter()
    with owner.begin() as conn:
        load_registry(conn, args.tenants - 1)
    small_each = max(0, (args.events - args.big) // max(1, args.tenants - 1))
    log(f"registry: {args.tenants} tenants; loading {small_each} events into each small tenant")
    step = 1000
    for first in range(1, args.tenants, step):
        params = {"a": f"co-{first:06d}", "b": f"co-{first + step - 1:06d}"}
        selected = "t.slug between :a and :b and t.status = 'active'"
        with owner.begin() as conn:
            load_events(conn, selected, small_each, 5, 50, args.days, params)
            build_rollups(conn, selected, params)
        log(f"  tenants up to {first + step - 1}: loaded ({time.perf_counter() - began:.0f} s)")
    for ref, n, users in [(big, args.big, 20_000)] + [(ref, n, max(50, n // 50)) for n, ref in growth.items()]:
        with owner.begin() as conn:
            load_events(conn, "t.id = :id", n, 20, users, args.days, {"id": ref.id})
            build_rollups(conn, "t.id = :id", {"id": ref.id})
        log(f"  {ref.slug}: {n} events ({time.perf_counter() - began:.0f} s)")
    with owner.begin() as conn:  # the per-day totals, from the per-tenant rows just made
        conn.execute(text("delete from registry.activity_days"))
        conn.execute(text("insert into registry.activity_days (day, tenants, events) "
                          "select day, count(*), sum(events) from registry.tenant_activity_days group by day"))
    with owner.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("vacuum analyze"))
        total = conn.execute(text("select count(*) from tenant_data.events")).scalar()
        size = conn.execute(text("select pg_size_pretty(pg_total_relation_size('tenant_data.events'))")).scalar()
        rollups = conn.execute(text("select count(*) from tenant_data.event_rollups where tenant_id = :t"),
                               {"t": big.id}).scalar()
    owner.dispose()
    log(f"loaded {total:,} events ({size}) in {time.perf_counter() - began:.0f} s; "
        f"big tenant: {rollups:,} roll-up rows")

    # 1. ingest
    port = free_port()
    server = start_gunicorn(throwaway.config, port, args.workers)
    try:
        ingest(port, [t for _, t in ingest_tenants], args.batch * args.clients * 2, args.batch, args.clients)  # warm
        seconds, latencies, refused = ingest(port, [t for _, t in ingest_tenants], args.ingest_events, args.batch,
                                             args.clients)
    finally:
        stop(server)
    accepted = args.batch * (len(latencies) - len(refused))
    print(f"\ningest: {accepted:,} events in {seconds:.1f} s = {accepted / seconds:,.0f} events/s "
          f"(batches of {args.batch}, {args.clients} clients, {args.workers} gunicorn workers); "
          f"per batch {summary(latencies)}; refused: {len(refused)} {sorted(set(refused))}")

    # 2. the big tenant's dashboard
    client = tenant_client(app, big)
    get, colds = dashboard_page(app, client, big)
    get()
    print(f"\nbig tenant ({args.big:,} events), {args.days}-day dashboard page:")
    for what, before in colds.items():
        print(f"  cold, {what + ':':<20} {summary(timed(get, args.rounds, before))}")
    get()
    print(f"  warm (from the cache):    {summary(timed(get, args.warm_rounds))}")
    today = datetime.now(timezone.utc).date()
    with app.app_context():
        queries_only = timed(lambda: queries.dashboard(big, today - timedelta(days=args.days - 1), today),
                             args.rounds, colds["after a new event"])
    print(f"  the queries alone, after a new event: {summary(queries_only)}")

    # 3. staff overview
    staff = staff_client(app)
    def overview_page():
        if staff.get("/admin/analytics").status_code != 200:
            raise RuntimeError("/admin/analytics did not answer 200")

    overview_page()
    overview = timed(overview_page, args.rounds)
    print(f"\nstaff overview at {args.tenants:,} tenants: {summary(overview)}")

    # 4. growth
    print("\ncold 90-day dashboard page by the tenant's events:")
    for n, ref in sorted(list(growth.items()) + [(args.big, big)], key=lambda pair: pair[0]):
        get, colds = dashboard_page(app, tenant_client(app, ref), ref)
        get()
        for what in ("after a new event", "first view"):
            print(f"  {n:>11,} events, {what + ':':<18} {summary(timed(get, args.rounds, colds[what]))}")


if __name__ == "__main__":
    main()
