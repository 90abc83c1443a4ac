"""The staff console at 10,000 tenants (issue 15): each page's p50/p95 in-process.

Builds a throwaway database (bench/_common.py: PORTAL_BENCH_DATABASE_URL, else
PORTAL_TEST_DATABASE_URL, else the local default), prepares it as a deploy does
(migrations to head, 0013's search indexes included), seeds --tenants tenants in one
`generate_series` statement (3% archived, the rest served; names, plans and creation
days repeating) and every served tenant's Redis figures in one pipeline (requests this
minute, API calls and slow statements today, users and storage as last measured), signs
a superadmin in with the Flask test client and asks each page --rounds times:

- the tenant list: first page; last page (keyset, ?last=1); a deep keyset page (?after=
  the cursor of the middle row); a search by part of a slug (trigram index);
- Quotas: first page (by pressure), its last page, sorted by tenant (the database picks
  the page) first and last;
- Top consumers: first page (by requests), sorted by tenant;
- the figures' snapshot that Quotas and Top sort by (portal/quotas/figures.py): one
  refresh, which the first page view after CONSOLE_FIGURES_MAX_AGE_SECONDS pays (the
  page rows above include it whenever the run crosses that age);
- CSV export of the whole list: the total time to read every row.

Baselines where the old behaviour still exists: the list's last page by OFFSET (the old
`search_tenants` service, count + page, the query alone, without rendering). The old
Quotas and Top pages (one tenant at a time, cut at 500) are gone.

    .venv/bin/python bench/console.py                        # the issue's figures
    .venv/bin/python bench/console.py --tenants 1000 --rounds 5   # a quick check
"""
import argparse
import logging
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import PASSWORD, Throwaway, csrf_token, percentile  # noqa: E402
from sqlalchemy import text  # noqa: E402

from portal.auth.services import create_staff_user  # noqa: E402
from portal.extensions import db, redis_holder  # noqa: E402
from portal.quotas import figures  # noqa: E402
from portal.services import ratelimit  # noqa: E402
from portal.services.keys import tenant_key  # noqa: E402
from portal.tenants.services import search_tenants  # noqa: E402

STAFF_EMAIL = "bench-console@staff.example"
MB = 1_048_576


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def seed(app, n):
    """`n` tenants in one statement; the served ones' Redis figures in one pipeline."""
    with app.app_context():
        db.session.execute(text("""
            INSERT INTO registry.tenants (id, slug, name, status, tier, plan_code, created_at, archived_at)
            SELECT gen_random_uuid(), 'co-' || lpad(i::text, 6, '0'), 'Company ' || (i % 2000),
                   CASE WHEN i % 33 = 0 THEN 'archived' WHEN i % 17 = 0 THEN 'suspended' ELSE 'active' END,
                   'pool', (array['basic', 'professional', 'enterprise'])[1 + i % 3],
                   now() - (i % 84) * interval '1 day', CASE WHEN i % 33 = 0 THEN now() END
            FROM generate_series(1, :n) i"""), {"n": n})
        db.session.execute(text("""
            INSERT INTO registry.tenant_overrides (id, tenant_id, key, value, reason, created_by)
            SELECT gen_random_uuid(), id, 'limit:api_calls_per_day', to_jsonb(5000), 'bench', 'bench'
            FROM registry.tenants WHERE slug LIKE 'co-%' AND right(slug, 2) = '07'"""))
        db.session.execute(text("ANALYZE registry.tenants"))
        db.session.commit()
        served = db.session.execute(text(
            "SELECT id FROM registry.tenants WHERE status IN ('active', 'suspended')")).scalars().all()
        minute, _ = ratelimit.minute_window()
        day, _ = ratelimit.day_window()
        pipe = redis_holder.client.pipeline(transaction=False)
        for i, tenant_id in enumerate(served):
            pipe.set(tenant_key(tenant_id, "rpm", minute), i % 300, ex=120)
            pipe.set(tenant_key(tenant_id, "api", day), (i * 37) % 20000, ex=86400)
            if i % 5 == 0:
                pipe.set(tenant_key(tenant_id, "slow", day), i % 7, ex=86400)
            if i % 3:
                pipe.set(tenant_key(tenant_id, "users-seen"), 1 + i % 40, ex=86400)
            pipe.set(tenant_key(tenant_id, "storage-seen"), (i % 900) * MB, ex=86400)
        pipe.execute()
        cursor = db.session.execute(text(
            "SELECT slug || ',' || id FROM registry.tenants ORDER BY slug, id OFFSET :n LIMIT 1"),
            {"n": n // 2}).scalar_one()
        db.session.remove()
    return len(served), cursor


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


def timed(fn, rounds):
    fn()  # warm: templates compiled, plans cached
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def page(client, url, expect=None):
    def get():
        response = client.get(url)
        body = response.get_data()
        if response.status_code != 200 or (expect and expect.encode() not in body):
            raise RuntimeError(f"{url}: {response.status_code}")
    return get


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--csv-rounds", type=int, default=10)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # no line per request or mail
    log(f"load average before: {os.getloadavg()}")
    throwaway = Throwaway()
    try:
        app = throwaway.open()
        started = time.perf_counter()
        served, cursor = seed(app, args.tenants)
        log(f"seeded {args.tenants:,} tenants ({served:,} served) in {time.perf_counter() - started:.1f} s")
        client = staff_client(app)
        pages = -(-served // app.config["PAGE_SIZE"])
        mid = f"{args.tenants // 2:06d}"  # part of a slug: up to 10 tenants match it
        cases = [
            ("tenant list: first page", page(client, "/admin/tenants", "co-000001")),
            ("tenant list: last page (keyset)", page(client, "/admin/tenants?last=1", f"co-{args.tenants:06d}")),
            ("tenant list: a deep page (keyset after=)", page(client, f"/admin/tenants?after={cursor}")),
            (f"tenant list: search 'o-{mid[:-1]}' (trigram)", page(client, f"/admin/tenants?q=o-{mid[:-1]}",
                                                                  f"co-{mid}")),
            ("quotas: first page (by pressure)", page(client, "/admin/quotas")),
            ("quotas: last page (by pressure)", page(client, f"/admin/quotas?page={pages}")),
            ("quotas: by tenant, first page", page(client, "/admin/quotas?sort=tenant&dir=asc")),
            ("quotas: by tenant, last page", page(client, f"/admin/quotas?sort=tenant&dir=asc&page={pages}")),
            ("top consumers: first page (by requests)", page(client, "/admin/top")),
            ("top consumers: by tenant", page(client, "/admin/top?sort=tenant&dir=asc")),
        ]
        results = {}
        for name, fn in cases:
            results[name] = timed(fn, args.rounds)
            log(f"{name}: done")

        def old_last_page():  # the OFFSET baseline: count, then the page by number
            with app.app_context():
                first = search_tenants(per_page=app.config["PAGE_SIZE"])
                search_tenants(per_page=app.config["PAGE_SIZE"], page=first.pages)
                db.session.remove()

        def refresh():
            with app.app_context():
                figures.refresh()
                db.session.commit()
                db.session.remove()

        results["figures snapshot: one refresh"] = timed(refresh, args.csv_rounds)

        results["baseline: last page by OFFSET (old service, queries only)"] = timed(old_last_page, args.rounds)

        def export():
            response = client.get("/admin/tenants.csv")
            rows = response.get_data().count(b"\n")
            if response.status_code != 200 or rows != args.tenants + 1:
                raise RuntimeError(f"csv: {response.status_code}, {rows} lines")

        results["CSV export of every tenant (total)"] = timed(export, args.csv_rounds)
    finally:
        throwaway.close()
    log(f"load average after: {os.getloadavg()}")
    print(f"\nstaff console at {args.tenants:,} tenants ({served:,} served), in-process, ms")
    print(f"{'page':<58}{'p50':>9}{'p95':>9}{'max':>9}")
    for name, samples in results.items():
        print(f"{name:<58}{statistics.median(samples):9.1f}{percentile(samples, 95):9.1f}{max(samples):9.1f}")


if __name__ == "__main__":
    main()
