"""What tenant permissions and support impersonation cost a tenant page request.

In one throwaway database and app (bench/_common.py: its own database, role prefix and
Redis prefix) it makes one pool tenant (plan professional, the pool tier asked for
explicitly: the plan's default tier is bridge; requests a minute overridden to 1,000,000 (the highest allowed) so
the rate limit never refuses) with 30 orders, and three principals:

  A. "member": a user with the built-in role member. The baseline: its permissions come
     from a constant (portal/auth/tenant_roles.py), no query.
  B. "custom":  a user with a custom role (tenant table `roles`) holding orders.view; by
     default it holds exactly the member's permissions (--custom-permissions member), so
     the page renders the same navigation as for A and the only difference is the role
     lookup, one query per request (`permissions_of`). --custom-permissions orders.view
     gives it orders.view alone.
  C. "impersonating": a support staff member impersonating user A, read-only, entered as
     support staff do it (POST /admin/tenants/<id>/impersonate from a signed-in staff
     console, then GET of the single-use handoff URL with a fresh client). Each request
     loads the Impersonation row and the StaffUser (portal/auth/principals.py) and, after
     the view, writes an audit event and bumps the impersonation's counter, one registry
     commit (portal/support/impersonation.py).

Each principal has its own Flask test client, signed in. GET /t/<slug>/orders is
requested for the three in turn, alternating A B C, C B A, ... (--warmup rounds untimed,
then --requests rounds timed). Printed: p50/p99 (and mean) ms for each, the ratios B/A and
C/A at p50 and p99, and the SQL statements each request sent (a `before_cursor_execute`
listener on the registry engine `db.engine` and on the tenant's engine: for the pool tier
they are one engine, counted once), with the transactions and commits; the statements of
one request of each principal, and of the odd requests that sent more. They explain the
ratios.

Measures and prints; asserts nothing (it stops only if a page is not the orders page).
Everything is dropped at the end.

    .venv/bin/python bench/tenant_access.py                        # full: 300 each
    .venv/bin/python bench/tenant_access.py --requests 30 --warmup 5   # quick
"""
import argparse
import os
import re
import statistics
import sys
import time
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from _common import PASSWORD, Throwaway, csrf_token, percentile  # noqa: E402

ORDERS = 30
PRINCIPALS = ("A", "B", "C")
LABELS = {"A": "A member (built-in role)", "B": "B custom role", "C": "C support, impersonating A"}
CUSTOM_ROLE = "order-desk"
BANNER = b'id="impersonation-banner"'


def log(message):
    print(message, file=sys.stderr, flush=True)


# -- setting up ------------------------------------------------------------------------------
def make_tenant(app, slug, custom_permissions):
    """The pool tenant, its 30 orders, users A and B, B's custom role; a support staff member."""
    from portal.auth.services import create_staff_user
    from portal.auth.tenant_roles import BUILTIN_ROLES
    from portal.extensions import db
    from portal.lifecycle.provisioning import create_tenant
    from portal.plans import services as plans
    from portal.services.passwords import hash_password
    from portal.tenancy.context import TenantRef
    from portal.tenancy.data import Order, TenantRole, TenantUser
    from portal.tenancy.placement import tenant_transaction
    from portal.tenants.services import get_tenant

    permissions = BUILTIN_ROLES["member"] if custom_permissions == "member" else {"orders.view"}
    users = {"A": (f"member@{slug}.example", "member"), "B": (f"custom@{slug}.example", CUSTOM_ROLE)}
    with app.app_context():
        tenant, _token = create_tenant(slug, f"Bench {slug}", "professional", f"admin@{slug}.example",
                                       tier="pool")
        ref = TenantRef.of(tenant)
        with tenant_transaction(ref) as session:
            session.add(TenantRole(tenant_id=ref.id, key=CUSTOM_ROLE, name="Order desk",
                                   permissions=sorted(permissions)))
            rows = {key: TenantUser(tenant_id=ref.id, email=email, name=key, role=role,
                                    password_hash=hash_password(PASSWORD)) for key, (email, role) in users.items()}
            session.add_all(rows.values())
            session.add_all(Order(tenant_id=ref.id, number=n, customer=f"Customer {n}", amount_cents=100 * n,
                                  status="open") for n in range(1, ORDERS + 1))
        ids = {key: row.id for key, row in rows.items()}
        plans.set_override(get_tenant(ref.id), "limit:requests_per_minute", "1000000", None,
                           "bench/tenant_access.py", ("system", None, "bench"))
        staff, _ = create_staff_user(f"support-{slug}@staff.example", "support", PASSWORD)
        staff_email = staff.email
        db.session.remove()
    return ref, {key: email for key, (email, _) in users.items()}, ids, staff_email, sorted(permissions)


def sign_in_tenant(app, ref, email):
    client = app.test_client()
    prefix = f"/t/{ref.slug}"
    page = client.get(f"{prefix}/login")
    response = client.post(f"{prefix}/login", data={
        "email": email, "password": PASSWORD, "csrf_token": csrf_token(page.get_data(as_text=True))})
    if response.status_code != 302:
        raise RuntimeError(f"sign-in of {email}: {response.status_code}")
    return client


def impersonating_client(app, ref, staff_email, user_id):
    """A client signed in to the tenant's pages by the handoff of a read-only impersonation
    of `user_id`, started by `staff_email` in the staff console (another client, so the
    tenant client carries no console cookie)."""
    console = app.test_client()
    page = console.get("/admin/login")
    response = console.post("/admin/login", data={
        "email": staff_email, "password": PASSWORD, "csrf_token": csrf_token(page.get_data(as_text=True))})
    if response.status_code != 302:
        raise RuntimeError(f"staff sign-in: {response.status_code}")
    page = console.get(f"/admin/tenants/{ref.id}/impersonate")
    if page.status_code != 200:
        raise RuntimeError(f"GET the impersonation form: {page.status_code}")
    response = console.post(f"/admin/tenants/{ref.id}/impersonate", data={
        "user": str(user_id), "reason": "bench/tenant_access.py: cost per request", "ticket": "BENCH-1",
        "minutes": "60", "csrf_token": csrf_token(page.get_data(as_text=True))})
    if response.status_code != 302:
        raise RuntimeError(f"start impersonation: {response.status_code} {response.get_data(as_text=True)[:300]}")
    location = urlsplit(response.headers["Location"])
    client = app.test_client()
    entered = client.get(f"{location.path}?{location.query}")
    if entered.status_code != 302 or not entered.headers["Location"].endswith(f"/t/{ref.slug}/"):
        raise RuntimeError(f"enter impersonation: {entered.status_code}")
    return client


# -- counting statements ---------------------------------------------------------------------
class Counter:
    """Statements (before_cursor_execute), transactions (begin) and commits on the given engines, each engine
    once; `log` keeps the statements of a request when set to a list."""

    def __init__(self, engines):
        from sqlalchemy import event

        self.engines = list({id(e): e for e in engines}.values())
        self.statements = self.commits = self.begins = 0
        self.log = None
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._statement)
            event.listen(engine, "commit", self._commit)
            event.listen(engine, "begin", self._begin)

    def _statement(self, conn, cursor, statement, parameters, context, executemany):
        self.statements += 1
        if self.log is not None:
            self.log.append(statement)

    def _commit(self, conn):
        self.commits += 1

    def _begin(self, conn):
        self.begins += 1

    def close(self):
        from sqlalchemy import event

        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._statement)
            event.remove(engine, "commit", self._commit)
            event.remove(engine, "begin", self._begin)


def describe(statement):
    """A statement in a few words: its verb and first table (the piggybacked set_config
    of the tenant, portal/tenancy/placement.py, shown as a '+' prefix)."""
    text = " ".join(statement.split())
    prefix = ""
    if text.lower().startswith("select set_config(") and "; " in text:
        prefix, text = "set_config + ", text.split("; ", 1)[1]
    verb = text.split(" ", 1)[0].upper()
    match = re.search(r"\b(?:FROM|INTO|UPDATE)\s+([\w.\"]+)", text, re.IGNORECASE)
    table = match.group(1).replace('"', "") if match else text[:60]
    return f"{prefix}{verb} {table}"


# -- the bench -------------------------------------------------------------------------------
def run_rounds(clients, url, n, warmup, counter):
    """Alternate A B C / C B A; return per principal the ms, statements, transactions and commits of
    each timed request, the statements of the last request of each, and of every timed one."""
    samples = {k: [] for k in clients}
    statements = {k: [] for k in clients}
    commits = {k: [] for k in clients}
    begins = {k: [] for k in clients}
    last, logs = {}, {k: [] for k in clients}
    for i in range(warmup + n):
        order = PRINCIPALS if i % 2 == 0 else PRINCIPALS[::-1]
        for key in order:
            client = clients[key]
            logged = []
            counter.log = logged
            s0, c0, b0 = counter.statements, counter.commits, counter.begins
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
            counter.log = None
            body = response.data
            if response.status_code != 200 or f"Customer {ORDERS}".encode() not in body or \
                    (BANNER in body) != (key == "C"):
                raise RuntimeError(f"GET {url} as {key}: {response.status_code}")
            if i >= warmup:
                samples[key].append(elapsed * 1e3)
                statements[key].append(counter.statements - s0)
                commits[key].append(counter.commits - c0)
                begins[key].append(counter.begins - b0)
                logs[key].append(logged)
            last[key] = logged
    return samples, statements, begins, commits, last, logs


def spread(values):
    low, high, mid = min(values), max(values), statistics.median(values)
    return f"{mid:g}" if low == high else f"{mid:g} (min {low}, max {high})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per principal")
    parser.add_argument("--warmup", type=int, default=30, help="untimed rounds first")
    parser.add_argument("--custom-permissions", choices=("member", "orders.view"), default="member",
                        help="B's custom role: the member's permissions (same page as A) or orders.view alone")
    args = parser.parse_args()

    from sqlalchemy import func, select, text

    from portal.extensions import db
    from portal.models import AuditEvent, Impersonation
    from portal.tenancy.placement import _bind_for

    started = time.perf_counter()
    bench = Throwaway(ARGON2_TIME_COST=1, ARGON2_MEMORY_COST=8192)
    with bench as app:
        with bench.admin.connect() as conn:
            version = conn.execute(text("show server_version")).scalar_one()
        log("making the tenant, its users, a custom role and a support staff member ...")
        ref, emails, ids, staff_email, custom_permissions = make_tenant(app, "bench-access", args.custom_permissions)
        clients = {key: sign_in_tenant(app, ref, emails[key]) for key in ("A", "B")}
        clients["C"] = impersonating_client(app, ref, staff_email, ids["A"])
        if ref.tier != "pool":
            raise RuntimeError(f"the tenant is {ref.tier}, not pool")
        with app.app_context():
            engines = [db.engine, _bind_for(ref)[0]]
            counter = Counter(engines)
        try:
            log(f"{args.warmup} warm-up rounds, then {args.requests} timed rounds (A B C, C B A, ...) ...")
            samples, statements, begins, commits, last, logs = run_rounds(
                clients, f"/t/{ref.slug}/orders", args.requests, args.warmup, counter)
        finally:
            counter.close()
        with app.app_context():
            row = db.session.execute(select(Impersonation).where(Impersonation.tenant_id == ref.id)).scalar_one()
            audited = db.session.execute(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "impersonation.request", AuditEvent.tenant_id == ref.id)).scalar_one()
            request_count = row.request_count
            db.session.remove()

    load_avg = os.getloadavg()
    print(f"PostgreSQL {version}; {os.cpu_count()} CPUs; load average at the end "
          f"{load_avg[0]:.1f} / {load_avg[1]:.1f} / {load_avg[2]:.1f}; whole run {time.perf_counter() - started:.0f} s")
    print(f"engines counted: {len(counter.engines)} (registry db.engine and the pool tenant's engine"
          f"{' are one' if len(counter.engines) == 1 else ''})")
    print(f"B's custom role {CUSTOM_ROLE!r}: {', '.join(custom_permissions)}")

    n = len(samples["A"])
    print(f"\nGET /t/<slug>/orders (test client, signed in, {ORDERS} orders, pool tier), {n} each, "
          f"alternating A B C / C B A after {args.warmup} warm-up rounds, ms")
    print(f"{'':<30}{'p50':>9}{'p99':>9}{'mean':>9}{'statements':>12}{'transactions':>14}{'commits':>9}")
    for key in PRINCIPALS:
        s = samples[key]
        print(f"{LABELS[key]:<30}{percentile(s, 50):>9.2f}{percentile(s, 99):>9.2f}{statistics.mean(s):>9.2f}"
              f"{statistics.median(statements[key]):>12g}{statistics.median(begins[key]):>14g}"
              f"{statistics.median(commits[key]):>9g}")
    a50, a99 = percentile(samples["A"], 50), percentile(samples["A"], 99)
    for key in ("B", "C"):
        p50, p99 = percentile(samples[key], 50), percentile(samples[key], 99)
        print(f"ratio {key}/A: p50 {p50 / a50:.2f}x ({p50 - a50:+.2f} ms), p99 {p99 / a99:.2f}x "
              f"({p99 - a99:+.2f} ms), mean {statistics.mean(samples[key]) / statistics.mean(samples['A']):.2f}x")

    print("\nper timed request (registry and tenant engine together; medians, with min/max where they differ):")
    for key in PRINCIPALS:
        print(f"  {LABELS[key]:<30} statements {spread(statements[key])}; transactions {spread(begins[key])}; "
              f"commits {spread(commits[key])}")
    print(f"impersonation: request_count {request_count}, impersonation.request audit events {audited} "
          f"(the handoff + {args.warmup + args.requests} page requests = {args.warmup + args.requests + 1})")

    for key in PRINCIPALS:
        usual = statistics.median(statements[key])
        extra = [i for i, count in enumerate(statements[key]) if count != usual]
        if extra:
            common = {describe(s) for s in last[key]}
            seen = sorted({describe(s) for i in extra for s in logs[key][i]} - common)
            print(f"  {key}: {len(extra)} of {len(statements[key])} requests sent other than {usual:g} statements; "
                  f"besides the usual ones: {'; '.join(seen) or '(the usual ones again)'}")

    print("\nthe statements of the last request of each principal:")
    for key in PRINCIPALS:
        print(f"  {LABELS[key]}:")
        for statement in last[key]:
            print(f"    {describe(statement)}")


if __name__ == "__main__":
    main()
