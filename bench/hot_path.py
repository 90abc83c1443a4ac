"""The hot path (issue 16): tenant pages under gunicorn against a bare Flask page doing the
same read, side by side in one run.

In a throwaway database (bench/_common.py) it makes three tenants as `make run`'s demo
does, one per tier: `acme` (pool), `globex` (bridge), `initech` (silo, a database of its
own on the same server), each with --orders orders, an admin with a known password, an API
token, and requests a minute and API calls a day overridden to the highest allowed
(nothing is refused, every check still runs); and a superadmin. Then it starts, one after the other, each with
the portal's gunicorn.conf.py (GUNICORN_WORKERS=2, GUNICORN_THREADS=4 unless set):

- the bare baseline, bench/bare_app.py: psycopg2 pool, acme's latest 50 orders with an
  explicit WHERE, a Jinja table with a nav;
- the portal (wsgi:app),

and drives each page with wrk (`-t 2 -c 8 -d --seconds`, signed-in cookies or a bearer
token as headers, a connection a request: see `wrk`), every page in turn, --repeat
rounds (wrk and the servers share the 2 cores: each round has its own bare figure). Printed:
the median requests/s, the median of each round's ratio to the bare page and to the pool
page (bridge and silo), and responses that were not 2xx (must be 0). Then, in-process (Flask test client, no
gunicorn): the single-request p50 of acme's orders page over --rounds requests.

Noisy neighbour (--flood-rate, 500 by default; 0 skips it): globex's requests a minute
lowered to 60, its orders page flooded at that rate by wrk (`flood`: a fixed pace, nearly
an open loop) while acme's page is measured as above, alone / flooded / flooded / alone;
the ratio of the medians, and the flood's achieved rate and share refused. Then the same
again through Debian's nginx in front of the same gunicorn, with the shipped refusal cache
(deploy/nginx/, set up as tests/servers.py's `nginx` does; skipped with --no-nginx or when
nginx is not installed): both the quiet tenant and the flood go through it.

    .venv/bin/python bench/hot_path.py                  # the issue's figures (about 5 minutes)
    .venv/bin/python bench/hot_path.py --seconds 3 --repeat 1    # a quick check

Needs wrk (Debian's `wrk`); nginx (Debian's) for the second noisy-neighbour run.
"""
import argparse
import http.cookiejar
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import PASSWORD, ROOT, Throwaway, csrf_token, open_to_load  # noqa: E402

sys.path.insert(0, ROOT)
from tests.servers import NGINX, nginx  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
TENANTS = [("acme", "basic"), ("globex", "professional"), ("initech", "enterprise")]  # pool, bridge, silo
STAFF_EMAIL = "bench-hot@staff.example"
ACTOR = ("system", None, "bench/hot_path.py")


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seed(app, orders):
    """The three tenants (ids, tiers, tokens) and the staff member."""
    from portal.auth.services import create_staff_user
    from portal.extensions import db
    from portal.lifecycle import placements
    from portal.lifecycle.provisioning import create_tenant
    from portal.tenancy.context import TenantRef
    from portal.tenancy.data import Order
    from portal.tenancy.placement import tenant_transaction

    made = {}
    with app.app_context():
        create_staff_user(STAFF_EMAIL, "superadmin", PASSWORD)
        placements.register("local", "", 100, actor=ACTOR)
        for slug, plan in TENANTS:
            tenant, _ = create_tenant(slug, slug.title(), plan, f"admin@{slug}.example")
            ref = TenantRef.of(tenant)
            _email, token = open_to_load(ref, "bench/hot_path.py", ACTOR)
            with tenant_transaction(ref) as session:
                session.add_all(Order(tenant_id=ref.id, number=n, customer=f"Customer {n}", amount_cents=100 * n,
                                      status="open") for n in range(1, orders + 1))
            made[slug] = {"id": str(ref.id), "tier": tenant.tier, "token": token}
        db.session.remove()
    return made


def gunicorn(module, port, env, chdir=ROOT, ready_path="/"):
    env = {**os.environ, **env, "GUNICORN_BIND": f"127.0.0.1:{port}",
           "GUNICORN_WORKERS": os.environ.get("GUNICORN_WORKERS", "2"),
           "GUNICORN_THREADS": os.environ.get("GUNICORN_THREADS", "4")}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", os.path.join(ROOT, "gunicorn.conf.py"),
                                "--chdir", chdir, module], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until a worker answers (the master listens before they boot)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=2).close()
            return process
        except urllib.error.HTTPError:
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn {module} ended: {process.returncode}") from None
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn {module} did not answer")


def stop(process):
    from portal.devserver import stop_process

    stop_process(process)


def signed_in_cookie(base, login_path, email):
    """The Cookie header of a session signed in through the sign-in form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + login_path).read().decode()
    form = urllib.parse.urlencode({"email": email, "password": PASSWORD, "csrf_token": csrf_token(page)}).encode()
    opener.open(base + login_path, data=form)
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    if "session" not in cookie:
        raise RuntimeError(f"sign-in at {login_path} failed")
    return cookie


def wrk(url, seconds, headers=()):
    """(requests/s, responses not 2xx or 3xx) of `url` under wrk -t2 -c8, a connection a
    request (`Connection: close`, as nginx talks to its upstreams by default): wrk's 8
    keep-alive connections, accepted once, would often all land on one of gunicorn's two
    workers, halving a run's figure at random (measured: ~100 or ~210 requests/s for the
    same page, whatever its tier)."""
    args = ["wrk", "-t", "2", "-c", "8", "-d", f"{seconds}s", "-H", "Connection: close"]
    for header in headers:
        args += ["-H", header]
    done = subprocess.run(args + [url], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrk {url}: {done.stdout} {done.stderr}")
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, int(bad.group(1)) if bad else 0


FLOOD_CONNECTIONS = 50


def flood(url, rate, seconds, headers=(), new_connections=False):
    """wrk flooding `url` at about `rate` requests/s for `seconds`, in the background:
    each of FLOOD_CONNECTIONS connections waits 1000 * FLOOD_CONNECTIONS / rate ms before
    each request (wrk's `delay` hook), so the rate holds however fast the answers come (a
    refusal takes ~1 ms: close to an open loop). Returns (the process, its script file).

    Keep-alive connections, as an HTTP client keeps them: between its requests a connection
    waits in gunicorn's poller, holding no thread. With `new_connections` (a connection a
    request) wrk opens each connection and only then waits out its delay before sending:
    each of the 50 holds a gunicorn thread idle for ~100 ms (gthread waits on a new
    connection's first bytes in a pool thread), a slow-client attack rather than a flood
    of requests; the portal's own work is the same either way."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(f"function delay()\n  return {round(1000 * FLOOD_CONNECTIONS / rate)}\nend\n")
    script.close()
    args = ["wrk", "-t", "1", "-c", str(FLOOD_CONNECTIONS), "-d", f"{seconds}s", "-s", script.name]
    if new_connections:
        args += ["-H", "Connection: close"]
    for header in headers:
        args += ["-H", header]
    return subprocess.Popen(args + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), script.name


def noisy_neighbour(quiet, flooder, rate, seconds, new_connections=False):
    """The quiet page's requests/s alone and while `flooder` is flooded at `rate`, in the
    order alone, flood, flood, alone: ({condition: [req/s]}, [(flood req/s, refused)])."""
    found, floods = {"alone": [], "flooded": []}, []
    for condition in ("alone", "flooded", "flooded", "alone"):
        process = script = None
        if condition == "flooded":
            process, script = flood(flooder[0], rate, seconds + 2, flooder[1], new_connections)
            time.sleep(1)  # the flood under way before the quiet tenant is measured
        found[condition].append(wrk(quiet[0], seconds, quiet[1])[0])
        log(f"noisy neighbour: quiet tenant {condition}: {found[condition][-1]:.0f} requests/s")
        if process is not None:
            out, _ = process.communicate(timeout=seconds + 30)
            os.unlink(script)
            total = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            refused = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
            requests = int(re.search(r"(\d+) requests in", out).group(1))
            floods.append((total, (int(refused.group(1)) if refused else 0) / max(1, requests)))
    return found, floods


def in_process_p50(app, rounds):
    """The single-request p50 (ms) of acme's orders page in-process, signed in."""
    client = app.test_client()
    page = client.get("/t/acme/login")
    client.post("/t/acme/login", data={"email": "admin@acme.example", "password": PASSWORD,
                                       "csrf_token": csrf_token(page.get_data(as_text=True))})
    for _ in range(20):
        assert client.get("/t/acme/orders").status_code == 200
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        client.get("/t/acme/orders")
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run")
    parser.add_argument("--orders", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every page, interleaved")
    parser.add_argument("--rounds", type=int, default=500, help="in-process requests")
    parser.add_argument("--flood-rate", type=int, default=500, help="noisy neighbour: the flood's requests/s "
                        "(0: skip)")
    parser.add_argument("--flood-new-connections", action="store_true",
                        help="the flood opens a connection a request and waits before sending (see `flood`)")
    parser.add_argument("--no-nginx", action="store_true", help="no second noisy-neighbour run through nginx")
    args = parser.parse_args()
    through_nginx = args.flood_rate and not args.no_nginx and os.path.exists(NGINX)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian's `wrk`)")
    logging.disable(logging.INFO)
    log(f"load average before: {os.getloadavg()}")
    throwaway = Throwaway()
    results, processes, neighbours = [], [], []
    front = tempfile.mkdtemp(prefix="bench-nginx-")
    try:
        app = throwaway.open()
        tenants = seed(app, args.orders)
        log("seeded acme (pool), globex (bridge), initech (silo)")
        config = throwaway.config
        portal_env = {"DATABASE_URL": config["DATABASE_URL"], "REDIS_URL": config["REDIS_URL"],
                      "PORTAL_APP_ROLE": config["PORTAL_APP_ROLE"], "PORTAL_NAME_PREFIX": config["PORTAL_NAME_PREFIX"],
                      "PORTAL_REDIS_PREFIX": config["PORTAL_REDIS_PREFIX"], "PORTAL_SECRET_KEY": config["SECRET_KEY"],
                      "PORTAL_ADMIN_HOSTS": "127.0.0.1"}
        bare_port, portal_port = free_port(), free_port()
        dsn = config["DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")
        bare = gunicorn("bare_app:app", bare_port, {"BARE_DSN": dsn, "BARE_TENANT_ID": tenants["acme"]["id"]},
                        chdir=BENCH, ready_path="/orders")
        processes.append(bare)
        portal = gunicorn("wsgi:app", portal_port, portal_env, ready_path="/healthz")
        processes.append(portal)
        base = f"http://127.0.0.1:{portal_port}"
        cookies = {slug: signed_in_cookie(base, f"/t/{slug}/login", f"admin@{slug}.example") for slug, _ in TENANTS}
        staff = signed_in_cookie(base, "/admin/login", STAFF_EMAIL)
        cases = [
            ("bare Flask + psycopg2, latest 50 orders", f"http://127.0.0.1:{bare_port}/orders", ()),
            ("/t/acme/orders (pool), signed in", f"{base}/t/acme/orders", (f"Cookie: {cookies['acme']}",)),
            ("/t/globex/orders (bridge)", f"{base}/t/globex/orders", (f"Cookie: {cookies['globex']}",)),
            ("/t/initech/orders (silo)", f"{base}/t/initech/orders", (f"Cookie: {cookies['initech']}",)),
            ("/admin/tenants (staff)", f"{base}/admin/tenants", (f"Cookie: {staff}",)),
            ("/t/acme/login (anonymous)", f"{base}/t/acme/login", ()),
            ("GET /api/v1/orders (token, acme)", f"{base}/api/v1/orders",
             (f"Authorization: Bearer {tenants['acme']['token']}", f"X-Tenant-ID: {tenants['acme']['id']}")),
        ]
        for _, url, headers in cases:  # warm every process's caches and pools
            wrk(url, 1, headers)
        for round_number in range(1, args.repeat + 1):  # interleaved: each round has its own bare figure
            for name, url, headers in cases:
                rate, bad = wrk(url, args.seconds, headers)
                results.append((round_number, name, rate, bad))
                log(f"round {round_number}: {name}: {rate:.0f} requests/s, {bad} not 2xx/3xx")
        if args.flood_rate:
            with app.app_context():  # globex floods its own pages, its limit low: most are refused
                from portal.extensions import db
                from portal.plans import services as plans
                from portal.tenants.services import get_tenant

                plans.set_override(get_tenant(tenants["globex"]["id"]), "limit:requests_per_minute", "60", None,
                                   "bench/hot_path.py", ACTOR)
                db.session.remove()
            time.sleep(app.config["ENTITLEMENTS_CACHE_SECONDS"] + 1)  # every worker sees the new limit
            bases = [("gunicorn", base)]
            if through_nginx:
                nginx_port = free_port()
                processes.append(nginx(nginx_port, [portal_port], front))
                bases.append(("nginx in front of gunicorn (deploy/nginx/)", f"http://127.0.0.1:{nginx_port}"))
            for label, url in bases:
                log(f"noisy neighbour: {label}")
                neighbours.append((label, noisy_neighbour(
                    (f"{url}/t/acme/orders", (f"Cookie: {cookies['acme']}",)),
                    (f"{url}/t/globex/orders", (f"Cookie: {cookies['globex']}",)),
                    args.flood_rate, args.seconds, args.flood_new_connections)))
        for process in processes:
            stop(process)
        processes = []
        single = in_process_p50(app, args.rounds)
    finally:
        for process in processes:
            stop(process)
        throwaway.close()
        shutil.rmtree(front, ignore_errors=True)
    log(f"load average after: {os.getloadavg()}")
    bare_name, pool_name = cases[0][0], cases[1][0]
    by_round = {}
    for round_number, name, rate, bad in results:
        by_round.setdefault(round_number, {})[name] = (rate, bad)
    print(f"\nhot path under gunicorn ({os.environ.get('GUNICORN_WORKERS', '2')} workers x "
          f"{os.environ.get('GUNICORN_THREADS', '4')} threads), wrk -t2 -c8 -d{args.seconds}s, {args.repeat} rounds: "
          "the median of the rounds (each ratio taken within its round)")
    print(f"{'page':<44}{'req/s':>9}{'vs bare':>9}{'vs pool':>9}{'not 2xx':>9}   rounds (req/s)")
    for name, _, _ in cases:
        rates = [r[name][0] for r in by_round.values()]
        to_bare = statistics.median(r[name][0] / r[bare_name][0] for r in by_round.values())
        to_pool = statistics.median(r[name][0] / r[pool_name][0] for r in by_round.values())
        bad = sum(r[name][1] for r in by_round.values())
        shown_pool = f"{to_pool:9.2f}" if name.startswith(("/t/globex", "/t/initech")) else f"{'':>9}"
        print(f"{name:<44}{statistics.median(rates):9.0f}{to_bare:9.2f}{shown_pool}{bad:9d}   "
              + ", ".join(f"{rate:.0f}" for rate in rates))
    for label, (found, floods) in neighbours:
        alone, flooded = statistics.median(found["alone"]), statistics.median(found["flooded"])
        style = "a new connection a request" if args.flood_new_connections else "keep-alive connections"
        print(f"\nnoisy neighbour, {label}: acme's orders page (wrk -c8) while globex's pages are flooded at "
              f"{args.flood_rate}/s over {FLOOD_CONNECTIONS} {style} (its limit 60 a minute)")
        print(f"  alone {alone:.0f} req/s ({', '.join(f'{r:.0f}' for r in found['alone'])}); flooded {flooded:.0f} "
              f"req/s ({', '.join(f'{r:.0f}' for r in found['flooded'])}); ratio {flooded / alone:.2f} (goal >= 0.9)")
        print("  the flood: " + "; ".join(f"{rate:.0f} req/s, {share:.1%} refused" for rate, share in floods))
    print(f"\nin-process, one request of /t/acme/orders: p50 {single:.2f} ms over {args.rounds}")


if __name__ == "__main__":
    main()
