"""The staff console's tenant list at 10,000 tenants against 10 (the baseline).

Builds a throwaway database on the server named by PORTAL_BENCH_DATABASE_URL, else
PORTAL_TEST_DATABASE_URL, else the local default; prepares it as a deploy does; then for
each size times the queries behind /admin/tenants through the real service
(`search_tenants`): the first page, a search by slug or name, a filter by plan and
status, a sort by name, and the last page. Prints p50/p99 per query and the ratio of
10,000 to 10. Dropped at the end.

    .venv/bin/python bench/registry_list.py [--tenants 10000] [--rounds 200]
"""
import argparse
import os
import statistics
import sys
import time
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from portal import create_app  # noqa: E402
from portal.dbsetup import setup_database  # noqa: E402
from portal.tenants.services import search_tenants  # noqa: E402

QUERIES = {
    "first page": dict(),
    "search 'co-07'": dict(q="co-07"),
    "plan+status filter": dict(plan="professional", status="active"),
    "sort by name desc": dict(sort="name", direction="desc"),
    "last page": dict(page=10**9),
}


def load(owner_url, n):
    engine = create_engine(owner_url)
    with engine.begin() as conn:
        conn.execute(text("truncate registry.tenants cascade"))
        conn.execute(text(
            "insert into registry.tenants (id, slug, name, status, tier, plan_code, settings) "
            "select gen_random_uuid(), 'co-' || lpad(i::text, 6, '0'), 'Company ' || i, "
            "case when i % 10 = 0 then 'suspended' else 'active' end, 'pool', "
            "(array['basic','professional','enterprise'])[1 + i % 3], '{}' "
            "from generate_series(1, :n) i"), {"n": n})
        conn.execute(text("analyze registry.tenants"))
    engine.dispose()


def time_queries(app, rounds):
    results = {}
    with app.app_context():
        for name, kwargs in QUERIES.items():
            samples = []
            for _ in range(rounds):
                start = time.perf_counter()
                page = search_tenants(per_page=50, **kwargs)
                if kwargs.get("page"):  # the last page: ask for it by number
                    search_tenants(per_page=50, page=page.pages)
                samples.append((time.perf_counter() - start) * 1e3)
            samples.sort()
            results[name] = (statistics.median(samples), samples[int(len(samples) * 0.99) - 1])
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    server = make_url(os.environ.get("PORTAL_BENCH_DATABASE_URL") or os.environ.get("PORTAL_TEST_DATABASE_URL")
                      or "postgresql://postgres@127.0.0.1:5432/postgres").set(drivername="postgresql+psycopg2")
    run = uuid.uuid4().hex[:8]
    database, role = f"portal_bench_{run}", f"portal_bench_app_{run}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'create database "{database}"'))
    owner_url = server.set(database=database).render_as_string(hide_password=False)
    try:
        app = create_app({"DATABASE_URL": owner_url, "PORTAL_APP_ROLE": role,
                          "REDIS_URL": os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")})
        setup_database(app.config)
        figures = {}
        for size in (args.baseline, args.tenants):
            load(owner_url, size)
            figures[size] = time_queries(app, args.rounds)
        with app.app_context():
            from portal.extensions import db
            db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'drop database if exists "{database}" with (force)'))
            conn.execute(text(f'drop role if exists "{role}"'))
        admin.dispose()
    base, big = figures[args.baseline], figures[args.tenants]
    print(f"tenant list (count + one page of 50), {args.rounds} rounds, ms")
    print(f"{'query':<22}{args.baseline:>8} p50{args.tenants:>9} p50{args.tenants:>9} p99{'ratio p50':>11}")
    for name in QUERIES:
        print(f"{name:<22}{base[name][0]:>12.2f}{big[name][0]:>13.2f}{big[name][1]:>13.2f}"
              f"{big[name][0] / base[name][0]:>11.2f}")


if __name__ == "__main__":
    main()
