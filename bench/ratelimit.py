"""What the per-tenant rate limit costs, and whether a flooding tenant slows a quiet one.

In one throwaway database and app (bench/_common.py: its own database, role prefix and
Redis prefix) it makes two pool tenants, each with a member and 30 orders: "quiet"
(requests a minute overridden to the highest allowed, 1,000,000, so every request still goes through the Redis
check and is let through) and "flood".

(a) Cost of the check.
    - `ratelimit.requests_this_minute(tenant_id, 10**9)` called --checks times in an app
      context: p50/p99 in µs, beside a bare Redis PING (one round trip, the floor).
    - A tenant page, GET /t/<quiet>/orders through the Flask test client, signed in, on
      two apps over the same database: the real one, and a second one whose
      `before_request_funcs[None]` lacks the pipeline's limits step, `limits.enforce` (the whole hook: entitlements
      from the per-process cache, the Redis check). Requests alternate between the two
      (ABBA order), --requests each after --warmup; p50/p99 in ms and the check's share
      of the page, (with - without) / with. In the "with" requests the hook, and the
      wait for the script's reply inside it, are also timed where they run (wrappers: the
      hook sends the script, checks the request's database connection out, then reads the
      reply, so the wait is what the checkout did not cover); and after each pair one
      request to the flooder's page (its limit 1 a minute here) gives the cost of a refusal (429).

(b) Noisy neighbour. The app is served by werkzeug's threaded server on 127.0.0.1 in a
    thread of this process. The quiet tenant's page is requested in a closed loop by 2
    client threads (http.client, keep-alive) for --seconds, alone, and again while 4
    threads hammer the flooder's own page (its requests a minute overridden to
    --flood-limit, so most of its requests are refused with 429 by the hook before any
    view runs). Conditions alternate alone / flood / flood / alone (--segments per
    condition), and the figure is the quiet tenant's requests/s under flood against alone.
    The client threads run, with --clients:
      processes: in child processes (quiet: 1 process x 2 threads; flood: 1 x 4), so the
                 clients do not share the server's GIL (as remote clients would not);
      threads:   in this process, beside the server (they share its GIL);
      both:      (default) the two, one after the other.
    Loops are bounded by time and by count (--max-requests per thread).

Measures and prints; asserts nothing. Everything is dropped at the end.

    .venv/bin/python bench/ratelimit.py                          # full (about 2 min)
    .venv/bin/python bench/ratelimit.py --checks 500 --requests 50 --seconds 2 --segments 1
"""
import argparse
import http.client
import multiprocessing
import os
import re
import statistics
import sys
import threading
import time
import urllib.parse

# Only the standard library at the top: the client processes (spawned) import this file
# and need none of the portal. The portal is imported in main().

HERE = os.path.dirname(os.path.abspath(__file__))
ORDERS = 30
MEMBER = "reader@{slug}.example"


# -- HTTP clients (also run in child processes) --------------------------------------------
# The highest requests a minute a limit may be (portal/models/plan.py): every request still counted.
MOST_RPM = 1_000_000

def _cookies(response, jar):
    for name, value in response.getheaders():
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            jar[key.strip()] = val.strip()
    return jar


def _cookie_header(jar):
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def http_sign_in(port, slug, email, password):
    """Sign in to the tenant's pages over HTTP; returns the Cookie header to send."""
    jar = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", f"/t/{slug}/login")
        response = conn.getresponse()
        html = response.read().decode()
        _cookies(response, jar)
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
            r'name="csrf_token" value="([^"]+)"', html)
        if response.status != 200 or not match:
            raise RuntimeError(f"GET /t/{slug}/login: {response.status}")
        body = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": match.group(1)})
        conn.request("POST", f"/t/{slug}/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": _cookie_header(jar)})
        response = conn.getresponse()
        response.read()
        _cookies(response, jar)
        if response.status != 302:
            raise RuntimeError(f"POST /t/{slug}/login: {response.status}")
    finally:
        conn.close()
    return _cookie_header(jar)


def http_get(port, path, cookie):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _client_thread(port, path, cookie, go, stop, deadline_s, max_requests, out):
    """Request `path` in a closed loop from `go` until `stop`, the deadline or the count."""
    statuses, latencies = {}, []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    go.wait()
    started = time.perf_counter()
    deadline = started + deadline_s
    try:
        for _ in range(max_requests):
            now = time.perf_counter()
            if now >= deadline or stop.is_set():
                break
            try:
                conn.request("GET", path, headers={"Cookie": cookie})
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                status = "error"
            latencies.append((time.perf_counter() - now) * 1e3)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        conn.close()
    out.append((statuses, latencies, time.perf_counter() - started))


def load(port, path, cookie, threads, deadline_s, max_requests, ready, go, stop, results, tag):
    """`threads` client threads on `path`; puts (tag, statuses, latencies, seconds) on
    `results`. Runs in a child process or in a thread of the bench."""
    out = []
    workers = [threading.Thread(target=_client_thread, daemon=True,
                                args=(port, path, cookie, go, stop, deadline_s, max_requests, out))
               for _ in range(threads)]
    for worker in workers:
        worker.start()
    ready.put(tag)
    for worker in workers:
        worker.join(deadline_s + 60)
    statuses = {}
    for part, _, _ in out:
        for status, count in part.items():
            statuses[status] = statuses.get(status, 0) + count
    results.put((tag, statuses, [ms for _, lat, _ in out for ms in lat], max((s for _, _, s in out), default=0.0)))


# -- the bench -----------------------------------------------------------------------------
def log(message):
    print(message, file=sys.stderr, flush=True)


def pct(samples, q):
    from _common import percentile

    return percentile(samples, q)


def make_tenant(app, slug, plan):
    from _common import PASSWORD

    from portal.extensions import db
    from portal.lifecycle.provisioning import create_tenant
    from portal.services.passwords import hash_password
    from portal.tenancy.context import TenantRef
    from portal.tenancy.data import Order, TenantUser
    from portal.tenancy.placement import tenant_transaction

    with app.app_context():
        tenant, _token = create_tenant(slug, f"Bench {slug}", plan, f"admin@{slug}.example")
        ref = TenantRef.of(tenant)
        with tenant_transaction(ref) as session:
            session.add(TenantUser(tenant_id=ref.id, email=MEMBER.format(slug=slug), name="Reader", role="member",
                                   password_hash=hash_password(PASSWORD)))
            session.add_all(Order(tenant_id=ref.id, number=n, customer=f"Customer {n}", amount_cents=100 * n,
                                  status="open") for n in range(1, ORDERS + 1))
        db.session.remove()
    return ref


def override_rpm(app, ref, value):
    """Override the tenant's requests a minute (clears this process's caches of it)."""
    from portal.extensions import db
    from portal.plans import services
    from portal.tenants.services import get_tenant

    with app.app_context():
        services.set_override(get_tenant(ref.id), "limit:requests_per_minute", str(value), None,
                              "bench/ratelimit.py", ("system", None, "bench"))
        db.session.remove()


def test_client_sign_in(app, ref):
    from _common import PASSWORD, csrf_token

    client = app.test_client()
    prefix = f"/t/{ref.slug}"
    page = client.get(f"{prefix}/login")
    response = client.post(f"{prefix}/login", data={
        "email": MEMBER.format(slug=ref.slug), "password": PASSWORD,
        "csrf_token": csrf_token(page.get_data(as_text=True))})
    if response.status_code != 302:
        raise RuntimeError(f"sign-in on {ref.slug}: {response.status_code}")
    return client


# (a) ---------------------------------------------------------------------------------------
def time_checks(app, ref, n, warmup):
    """µs per `requests_this_minute` call and per bare PING, interleaved."""
    from portal.extensions import redis_holder
    from portal.services import ratelimit

    checks, pings = [], []
    with app.app_context():
        client = redis_holder.client
        for i in range(warmup + n):
            started = time.perf_counter_ns()
            decision = ratelimit.requests_this_minute(ref.id, 10**9)
            middle = time.perf_counter_ns()
            client.ping()
            ended = time.perf_counter_ns()
            if not decision.allowed or decision.degraded:
                raise RuntimeError(f"unexpected decision {decision}")
            if i >= warmup:
                checks.append((middle - started) / 1e3)
                pings.append((ended - middle) / 1e3)
    return checks, pings


def _is_limits_hook(func):
    """The pipeline's limits step (portal/pipeline.py installs portal.quotas.limits.enforce)."""
    return func.__module__ == "portal.quotas.limits" and func.__name__ == "enforce"


def without_limits(config):
    """A second app on the same database whose before_request lacks `limits.enforce`."""
    from portal import create_app

    app = create_app(config)
    funcs = app.before_request_funcs[None]
    kept = [f for f in funcs if not _is_limits_hook(f)]
    if len(kept) != len(funcs) - 1:
        raise RuntimeError(f"expected one limits hook, found {len(funcs) - len(kept)}")
    app.before_request_funcs[None] = kept
    return app


class InSitu:
    """While open, times (µs) the `limits.enforce` hook of `app`, and the wait for the
    rate-limit script's reply inside it (`Hit.decision`), in the requests themselves."""

    def __init__(self, app):
        self.app, self.hook, self.check, self.on = app, [], [], False

    def __enter__(self):
        from portal.services import ratelimit

        funcs = self.app.before_request_funcs[None]
        self.index = next(i for i, f in enumerate(funcs) if _is_limits_hook(f))
        self.original_hook, self.original_check = funcs[self.index], ratelimit.Hit.decision

        def hook():
            started = time.perf_counter_ns()
            try:
                return self.original_hook()
            finally:
                if self.on:
                    self.hook.append((time.perf_counter_ns() - started) / 1e3)

        def check(*args, **kwargs):
            started = time.perf_counter_ns()
            try:
                return self.original_check(*args, **kwargs)
            finally:
                if self.on:
                    self.check.append((time.perf_counter_ns() - started) / 1e3)

        funcs[self.index], ratelimit.Hit.decision = hook, check
        return self

    def __exit__(self, *exc):
        from portal.services import ratelimit

        self.app.before_request_funcs[None][self.index] = self.original_hook
        ratelimit.Hit.decision = self.original_check


def time_pages(with_app, without_app, ref, refused_ref, n, warmup):
    """ms per GET /t/<slug>/orders on each app, alternating in ABBA order; and, after each
    pair, ms per GET of `refused_ref`'s page, refused by the hook (its limit is 0).
    The hook and the check are also timed inside the "with" page's requests."""
    clients = {"with": test_client_sign_in(with_app, ref), "without": test_client_sign_in(without_app, ref)}
    url = f"/t/{ref.slug}/orders"
    refused_client, refused_url = with_app.test_client(), f"/t/{refused_ref.slug}/orders"
    samples = {"with": [], "without": [], "refused": []}
    with InSitu(with_app) as in_situ:
        samples["hook"], samples["check"] = in_situ.hook, in_situ.check
        _page_rounds(clients, url, refused_client, refused_url, n, warmup, samples, in_situ)
    return samples


def _page_rounds(clients, url, refused_client, refused_url, n, warmup, samples, in_situ):
    for i in range(warmup + n):
        order = ("with", "without") if i % 2 == 0 else ("without", "with")
        for name in order:
            in_situ.on = i >= warmup and name == "with"
            started = time.perf_counter()
            response = clients[name].get(url)
            elapsed = time.perf_counter() - started
            if response.status_code != 200 or f"Customer {ORDERS}".encode() not in response.data:
                raise RuntimeError(f"GET {url} ({name}): {response.status_code}")
            if i >= warmup:
                samples[name].append(elapsed * 1e3)
        in_situ.on = False
        for _ in range(2):  # its limit is 1 a minute: a new minute lets one request through
            started = time.perf_counter()
            response = refused_client.get(refused_url)
            elapsed = time.perf_counter() - started
            if response.status_code == 429:
                break
        else:
            raise RuntimeError(f"GET {refused_url}: {response.status_code}, not 429")
        if i >= warmup:
            samples["refused"].append(elapsed * 1e3)


# (b) ---------------------------------------------------------------------------------------
def serve(app):
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="bench-server", daemon=True)
    thread.start()
    return server, thread


def segment(mode, port, quiet, flood, seconds, max_requests, with_flood):
    """One timed segment: the quiet load (2 threads), with or without the flood (4)."""
    if mode == "processes":
        ctx = multiprocessing.get_context("spawn")
        runner, ready, results, go, stop = ctx.Process, ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    else:
        import queue

        runner, ready, results, go, stop = threading.Thread, queue.Queue(), queue.Queue(), threading.Event(), \
            threading.Event()
    never = multiprocessing.get_context("spawn").Event() if mode == "processes" else threading.Event()
    loads = [runner(target=load, daemon=True, args=(port, quiet[0], quiet[1], 2, seconds, max_requests, ready, go,
                                                    never, results, "quiet"))]
    if with_flood:
        loads.append(runner(target=load, daemon=True, args=(port, flood[0], flood[1], 4, seconds + 30, max_requests,
                                                            ready, go, stop, results, "flood")))
    for item in loads:
        item.start()
    for _ in loads:
        ready.get(timeout=120)
    time.sleep(0.2)  # the client threads are at go.wait()
    go.set()
    got = {}
    tag, *rest = results.get(timeout=seconds + 120)
    got[tag] = rest
    stop.set()  # the quiet load is done: stop the flood
    for _ in loads[1:]:
        tag, *rest = results.get(timeout=120)
        got[tag] = rest
    for item in loads:
        item.join(60)
    return got


def noisy_neighbour(app, quiet, flood, args, modes):
    from _common import PASSWORD

    from portal.services.keys import clear_tenant_keys

    server, thread = serve(app)
    port = server.server_port
    try:
        with app.app_context():  # (a) counted the flooder's refusals in this minute: start afresh
            clear_tenant_keys(flood.id)
        override_rpm(app, flood, MOST_RPM)  # (a) left it at 1; let its sign-in through
        cookies = {ref.slug: http_sign_in(port, ref.slug, MEMBER.format(slug=ref.slug), PASSWORD)
                   for ref in (quiet, flood)}
        override_rpm(app, flood, args.flood_limit)  # after its sign-in, which counts too
        quiet_page = (f"/t/{quiet.slug}/orders", cookies[quiet.slug])
        flood_page = (f"/t/{flood.slug}/orders", cookies[flood.slug])
        status, body = http_get(port, *quiet_page)
        if status != 200 or f"Customer {ORDERS}".encode() not in body:
            raise RuntimeError(f"quiet page over HTTP: {status}")
        status, _ = http_get(port, *flood_page)
        if status not in (200, 429):
            raise RuntimeError(f"flood page over HTTP: {status}")

        figures = {}
        for mode in modes:
            runs = {"alone": [], "flood": []}
            pattern = (["alone", "flood", "flood", "alone"] * args.segments)[: 2 * args.segments]  # ABBA...
            seconds = args.seconds / args.segments
            for condition in pattern:
                log(f"  (b) {mode}: {condition}, {seconds:.1f} s")
                runs[condition].append(segment(mode, port, quiet_page, flood_page, seconds, args.max_requests,
                                               condition == "flood"))
            figures[mode] = runs
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    return figures


def summarise(runs):
    """Per condition: quiet ok/s, quiet p50/p99 ms, quiet non-200s; flood req/s, 429 share."""
    out = {}
    for condition, segments in runs.items():
        ok = sum(s["quiet"][0].get(200, 0) for s in segments)
        other = sum(n for s in segments for st, n in s["quiet"][0].items() if st != 200)
        seconds = sum(s["quiet"][2] for s in segments)
        latencies = [ms for s in segments for ms in s["quiet"][1]]
        row = {"rps": ok / seconds, "p50": pct(latencies, 50), "p99": pct(latencies, 99), "other": other,
               "per_segment": [s["quiet"][0].get(200, 0) / s["quiet"][2] for s in segments]}
        floods = [s["flood"] for s in segments if "flood" in s]
        if floods:
            total = sum(sum(f[0].values()) for f in floods)
            row["flood_rps"] = total / sum(f[2] for f in floods)
            row["flood_429"] = sum(f[0].get(429, 0) for f in floods) / max(1, total)
            row["flood_200"] = sum(f[0].get(200, 0) for f in floods)
            row["flood_other"] = sum(n for f in floods for st, n in f[0].items() if st not in (200, 429))
            row["flood_p50"] = pct([ms for f in floods for ms in f[1]], 50)
        out[condition] = row
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=5000, help="timed rate-limit checks (a)")
    parser.add_argument("--requests", type=int, default=1000, help="timed page requests per app (a)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests/checks first (a)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per condition (b)")
    parser.add_argument("--segments", type=int, default=2, help="segments per condition, alternating (b)")
    parser.add_argument("--flood-limit", type=int, default=60, help="the flooder's requests a minute (b)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="bound per client thread (b)")
    parser.add_argument("--clients", choices=("processes", "threads", "both"), default="both")
    args = parser.parse_args()
    modes = ("processes", "threads") if args.clients == "both" else (args.clients,)

    sys.path.insert(0, HERE)
    from _common import Throwaway, redis_url
    from sqlalchemy import text

    from portal.extensions import db, redis_holder

    started = time.perf_counter()
    argon = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 8192}
    bench = Throwaway(**argon)
    second = None
    with bench as app:
        with bench.admin.connect() as conn:
            version = conn.execute(text("show server_version")).scalar_one()
        log("making the tenants ...")
        quiet = make_tenant(app, "bench-quiet", "professional")
        flood = make_tenant(app, "bench-flood", "basic")
        override_rpm(app, quiet, MOST_RPM)
        override_rpm(app, flood, 1)  # (a): every request of its refused but a minute's first
        try:
            log(f"(a) {args.checks} rate-limit checks ...")
            checks, pings = time_checks(app, quiet, args.checks, args.warmup * 10)
            log(f"(a) {args.requests} page requests with and without the hook ...")
            second = without_limits({
                "DATABASE_URL": bench.owner_url, "PORTAL_APP_ROLE": f"{bench.prefix}app",
                "PORTAL_NAME_PREFIX": bench.prefix, "PORTAL_REDIS_PREFIX": bench.redis_prefix,
                "REDIS_URL": redis_url(), "SECRET_KEY": f"bench-{bench.run}", **argon})
            pages = time_pages(app, second, quiet, flood, args.requests, args.warmup)
            log("(b) noisy neighbour ...")
            noisy = noisy_neighbour(app, quiet, flood, args, modes)
        finally:
            if second is not None:
                with second.app_context():
                    db.engine.dispose()
                second.extensions["portal.silo_engines"].dispose_all()
                second.extensions["portal.redis"].close()
            # The run's Redis keys, here in an app context (the Redis client is the app's).
            with app.app_context():
                client = redis_holder.client
                for key in client.scan_iter(match=f"{bench.redis_prefix}:*", count=500):
                    client.unlink(key)

    load_avg = os.getloadavg()
    print(f"PostgreSQL {version}; {os.cpu_count()} CPUs; load average at the end "
          f"{load_avg[0]:.1f} / {load_avg[1]:.1f} / {load_avg[2]:.1f}; whole run {time.perf_counter() - started:.0f} s")

    print(f"\n(a) the rate-limit check, {len(checks)} calls, µs")
    print(f"{'':<36}{'p50':>9}{'p99':>9}")
    print(f"{'requests_this_minute (Lua, 1 trip)':<36}{pct(checks, 50):>9.0f}{pct(checks, 99):>9.0f}")
    print(f"{'bare Redis PING (the floor)':<36}{pct(pings, 50):>9.0f}{pct(pings, 99):>9.0f}")

    w, wo = pages["with"], pages["without"]
    print(f"\n(a) GET /t/<slug>/orders (test client, signed in, 30 orders), {len(w)} each, ABBA, ms")
    print(f"{'':<36}{'p50':>9}{'p99':>9}{'mean':>9}")
    print(f"{'without limits.enforce':<36}{pct(wo, 50):>9.3f}{pct(wo, 99):>9.3f}{statistics.mean(wo):>9.3f}")
    print(f"{'with limits.enforce':<36}{pct(w, 50):>9.3f}{pct(w, 99):>9.3f}{statistics.mean(w):>9.3f}")
    share50 = (pct(w, 50) - pct(wo, 50)) / pct(w, 50)
    share99 = (pct(w, 99) - pct(wo, 99)) / pct(w, 99)
    print(f"share of the page, (with - without) / with: p50 {share50:.1%}, p99 {share99:.1%}, "
          f"mean {(statistics.mean(w) - statistics.mean(wo)) / statistics.mean(w):.1%} (goal <= 5%)")
    hook, check = pages["hook"], pages["check"]
    print(f"timed inside the 'with' requests, µs: the hook p50 {pct(hook, 50):.0f} / p99 {pct(hook, 99):.0f}, "
          f"the wait for the script's reply in it p50 {pct(check, 50):.0f} / p99 {pct(check, 99):.0f}")
    print(f"share of the page's p50: the hook {pct(hook, 50) / 1e3 / pct(w, 50):.1%} (the connection's checkout "
          f"included), the reply's wait in it "
          f"{pct(check, 50) / 1e3 / pct(w, 50):.1%}, the check timed alone {pct(checks, 50) / 1e3 / pct(w, 50):.1%}")
    r = pages["refused"]
    print(f"a request refused by the hook (429 page, another tenant): p50 {pct(r, 50):.3f} ms, "
          f"p99 {pct(r, 99):.3f} ms, {pct(r, 50) / pct(w, 50):.0%} of the page's p50")

    print(f"\n(b) quiet tenant's page, 2 client threads, keep-alive, {args.seconds:.0f} s per condition in "
          f"{args.segments} segment(s); flood: 4 threads, {args.flood_limit} requests a minute allowed")
    for mode in modes:
        s = summarise(noisy[mode])
        alone, flooded = s["alone"], s["flood"]
        print(f"\n  clients in {mode}")
        print(f"  {'':<22}{'quiet req/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}   per segment")
        for name, row in (("alone", alone), ("while flooded", flooded)):
            print(f"  {name:<22}{row['rps']:>12.1f}{row['p50']:>9.2f}{row['p99']:>9.2f}{row['other']:>9}   "
                  + ", ".join(f"{x:.1f}" for x in row["per_segment"]))
        print(f"  flood: {flooded['flood_rps']:.0f} req/s, {flooded['flood_429']:.1%} refused (429), "
              f"{flooded['flood_200']} let through, {flooded['flood_other']} other, p50 {flooded['flood_p50']:.2f} ms")
        print(f"  ratio quiet req/s flooded / alone: {flooded['rps'] / alone['rps']:.2f}x (goal >= 0.9x)")


if __name__ == "__main__":
    main()
