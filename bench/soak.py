"""The soak (issue 17): the portal scaled out on loopback, under a mixed load, through
faults, checked for answers that carry another tenant's data.

Topology, all started here and stopped at the end (Debian's binaries):
- the registry's PostgreSQL (PORTAL_BENCH_DATABASE_URL, as every bench) with the app
  role behind a PgBouncer in transaction pooling; a second PostgreSQL server (initdb'd
  in a temporary folder) registered as placement `second` for silos;
- a Redis Cluster of three masters for the portal's keys, and the plain Redis of
  PORTAL_BENCH_REDIS_URL for the job queue;
- two gunicorn nodes (gunicorn.conf.py, 2 workers x 4 threads) behind nginx, round robin;
  two job workers.

--tenants tenants (30) across pool, bridge, silo on the registry's server and silo on
the second, each with an admin and an API token. --clients client threads (32), each
bound to one tenant, for --seconds (120): page views (the orders list, signed in), API
reads and writes (orders), event batches, and sign-outs with sign-ins again. Every write
carries a marker naming its tenant (`soakmark<NN>x...`); every answer is searched for
markers of other tenants. A request that fails (no answer, or 502/503/504) is retried
once, as a client behind a load balancer would; both tries are recorded.

Faults, in turn (at 1/6, 2/6, 3/6 and 4/6 of the run): the second PostgreSQL server
restarted; one Redis master restarted; one gunicorn worker and one job worker SIGKILLed,
the job worker in the middle of an export (a supervisor starts another); PgBouncer
restarted. For each: the failed requests after it (by kind and tier), their window, and
when the last one came.

    .venv/bin/python bench/soak.py                       # the issue's run: about 4 minutes here
    .venv/bin/python bench/soak.py --tenants 6 --clients 8 --seconds 40   # a quick check

Measures, never asserts; prints the figures. Needs root or the postgres user for the
second server (initdb will not run as root: it runs as `postgres`).
"""
import argparse
import http.cookiejar
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import PASSWORD, ROOT, Throwaway, csrf_token, open_to_load, percentile, redis_url  # noqa: E402

from tests.servers import PgBouncer, RedisCluster, free_port, nginx, wait_ready  # noqa: E402

SECOND_ENV = "PORTAL_SOAK_SECOND_SERVER_URL"
ACTOR = ("system", None, "bench/soak.py")
PG_BIN = "/usr/lib/postgresql/15/bin"
MARKER = re.compile(r"soakmark(\d\d)x")
KINDS = {"page": 30, "api read": 25, "api write": 20, "events": 10, "sign-out and in": 15}
RETRIED = {502, 503, 504}
TIERS = [("pool", None), ("bridge", None), ("silo", "local"), ("silo", "second")]


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class SecondServer:
    """A PostgreSQL 15 of its own on a free loopback port, in a temporary folder."""

    def __init__(self):
        self.port, self.folder = free_port(), tempfile.mkdtemp(prefix="portal-soak-pg-")
        self.data = os.path.join(self.folder, "data")
        os.chmod(self.folder, 0o777)
        self._as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres"])

    def _as_postgres(self, args):
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + args, check=True, capture_output=True, timeout=120)

    @property
    def url(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, action):
        self._as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-w", "-m", "fast", "-l",
                           os.path.join(self.folder, "log"), "-o",
                           f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1", action])

    def start(self):
        self._ctl("start")
        return self

    def restart(self):
        self._ctl("restart")

    def stop(self):
        try:
            self._ctl("stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Client(threading.Thread):
    """One browser and API client of one tenant, until the deadline."""

    def __init__(self, number, tenant, base, deadline, records, seed):
        super().__init__(daemon=True)
        self.number, self.tenant, self.base, self.deadline = number, tenant, base, deadline
        self.records, self.rng, self.writes = records, random.Random(seed), 0
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def http(self, path, data=None, json_body=None, api=False):
        headers = {"Connection": "close"}
        body = None
        if json_body is not None:
            body, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif data is not None:
            body = urllib.parse.urlencode(data).encode()
        if api:
            headers["Authorization"] = f"Bearer {self.tenant['token']}"
        request = urllib.request.Request(self.base + path, data=body, headers=headers)
        try:
            with self.opener.open(request, timeout=30) as answer:
                return answer.status, answer.read().decode(errors="replace")
        except urllib.error.HTTPError as answer:
            return answer.code, answer.read().decode(errors="replace")
        except OSError as exc:
            return None, str(exc)

    def timed(self, kind, do):
        """Run `do` (returns (status, body)); once more if it failed for want of an answer."""
        for attempt in (1, 2):
            began = time.perf_counter()
            status, body = do()
            self.records.append((time.monotonic(), kind, self.tenant["index"], status, time.perf_counter() - began,
                                 attempt, self.foreign(body)))
            if status is not None and status not in RETRIED:
                return status, body
        return status, body

    def foreign(self, body):
        return sum(1 for found in MARKER.findall(body or "") if int(found) != self.tenant["index"])

    def sign_in(self):
        slug = self.tenant["slug"]

        def do():
            status, page = self.http(f"/t/{slug}/login")
            if status != 200:
                return status, page
            return self.http(f"/t/{slug}/login", {"email": self.tenant["email"], "password": PASSWORD,
                                                  "csrf_token": csrf_token(page)})
        return self.timed("sign-in", do)

    def marker(self):
        self.writes += 1
        return f"soakmark{self.tenant['index']:02d}x{self.number}x{self.writes}"

    def run(self):
        slug = self.tenant["slug"]
        self.sign_in()
        while time.monotonic() < self.deadline:
            kind = self.rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
            if kind == "page":
                status, _ = self.timed(kind, lambda: self.http(f"/t/{slug}/orders"))
                if status == 302:
                    self.sign_in()  # (a suspension or a restart may have ended the session)
            elif kind == "api read":
                self.timed(kind, lambda: self.http("/api/v1/orders", api=True))
            elif kind == "api write":
                body = {"customer": self.marker(), "amount_cents": 1}
                self.timed(kind, lambda body=body: self.http("/api/v1/orders", json_body=body, api=True))
            elif kind == "events":
                body = {"events": [{"name": "soak", "user_id": f"c{self.number}", "properties": {"m": self.marker()}}
                                   for _ in range(5)]}
                self.timed(kind, lambda body=body: self.http("/api/v1/events", json_body=body, api=True))
            else:
                status, page = self.http(f"/t/{slug}/orders")
                if status == 200:
                    token = csrf_token(page)
                    self.timed(kind, lambda token=token: self.http(f"/t/{slug}/logout", {"csrf_token": token}))
                self.sign_in()


def make_tenants(app, count):
    from portal.extensions import db
    from portal.lifecycle import placements
    from portal.lifecycle.provisioning import create_tenant
    from portal.tenancy.context import TenantRef

    made = []
    with app.app_context():
        ids = {"local": placements.register("local", "", 1000, actor=ACTOR).id,
               "second": placements.register("second", SECOND_ENV, 1000, actor=ACTOR).id}
        for index in range(count):
            tier, placement = TIERS[index % len(TIERS)]
            slug = f"soak{index:02d}"
            tenant, _ = create_tenant(slug, f"Soak {index}", "enterprise", f"admin@{slug}.example", tier=tier,
                                      placement_id=ids[placement] if placement else None)
            email, token = open_to_load(TenantRef.of(tenant), "bench/soak.py", ACTOR)
            made.append({"index": index, "slug": slug, "id": tenant.id, "email": email, "token": token,
                         "tier": f"{tier} ({placement})" if placement else tier})
        db.session.remove()
    return made


def node_env(config, port):
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": config["DATABASE_URL"], "REDIS_URL": config["REDIS_URL"], "PORTAL_REDIS_CLUSTER": "1",
        "PORTAL_RQ_REDIS_URL": config["RQ_REDIS_URL"], "PORTAL_APP_DATABASE_HOST": config["PORTAL_APP_DATABASE_HOST"],
        "PORTAL_APP_ROLE": config["PORTAL_APP_ROLE"], "PORTAL_NAME_PREFIX": config["PORTAL_NAME_PREFIX"],
        "PORTAL_REDIS_PREFIX": config["PORTAL_REDIS_PREFIX"], "PORTAL_SECRET_KEY": config["SECRET_KEY"],
        "PORTAL_ADMIN_HOSTS": "127.0.0.1", "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4", "PORTAL_JOB_STALE_SECONDS": "10", "PORTAL_JOB_HEARTBEAT_SECONDS": "2",
    })
    return env


def start_node(config, port, folder):
    log_file = open(os.path.join(folder, f"node-{port}.log"), "wb")  # (a pipe nobody reads fills up)
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT,
                               env=node_env(config, port), stdout=log_file, stderr=subprocess.STDOUT,
                               start_new_session=True)
    wait_ready(f"http://127.0.0.1:{port}/readyz", process)
    return process


def start_worker(config, folder, n):
    log_file = open(os.path.join(folder, f"worker-{n}.log"), "wb")
    return subprocess.Popen([sys.executable, "-m", "portal.worker"], cwd=ROOT, env=node_env(config, 0),
                            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


def end(process):
    if process is not None and process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=30)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=120)
    args = parser.parse_args()
    log(f"load average before: {os.getloadavg()}")
    folder = tempfile.mkdtemp(prefix="portal-soak-")
    second = cluster = bouncer = balancer = None
    nodes, workers, records, faults = [], [], [], []
    throwaway = None
    try:
        second = SecondServer().start()
        os.environ[SECOND_ENV] = second.url
        cluster = RedisCluster().start()
        throwaway = Throwaway(REDIS_URL=cluster.url, REDIS_CLUSTER=True, RQ_REDIS_URL=redis_url(),
                              PORTAL_ADMIN_HOSTS="127.0.0.1")
        bouncer = PgBouncer(throwaway.owner_url, [throwaway.app_role]).start()
        app = throwaway.open(PORTAL_APP_DATABASE_HOST=bouncer.host)
        log(f"servers up: second PostgreSQL :{second.port}, Redis Cluster {cluster.ports}, PgBouncer {bouncer.host}")
        tenants = make_tenants(app, args.tenants)
        log(f"{len(tenants)} tenants: {dict(Counter(t['tier'] for t in tenants))}")
        node_ports = [free_port(), free_port()]
        nodes = [start_node(throwaway.config, port, folder) for port in node_ports]
        port = free_port()
        balancer = nginx(port, node_ports, folder)
        wait_ready(f"http://127.0.0.1:{port}/readyz", balancer)
        workers = [start_worker(throwaway.config, folder, n) for n in (1, 2)]
        base = f"http://127.0.0.1:{port}"
        log(f"nginx :{port} in front of gunicorn {node_ports}; 2 job workers")

        started = time.monotonic()
        deadline = started + args.seconds
        clients = [Client(n, tenants[n % len(tenants)], base, deadline, records, n) for n in range(args.clients)]
        for client in clients:
            client.start()
        faults = run_faults(app, started, args.seconds, second, cluster, bouncer, nodes, workers, throwaway.config,
                            folder, tenants)
        for client in clients:
            client.join(60)
        report(records, faults, tenants, started, args)
        report_errors(folder)
    finally:
        for process in [balancer, *nodes, *workers]:
            end(process)
        if bouncer is not None:
            bouncer.stop()
        if throwaway is not None:
            throwaway.close()
        if cluster is not None:
            cluster.stop()
        if second is not None:
            second.stop()
        shutil.rmtree(folder, ignore_errors=True)
        log(f"load average after: {os.getloadavg()}")


def run_faults(app, started, seconds, second, cluster, bouncer, nodes, workers, config, folder, tenants):
    """The faults, each at its time: [(name, began, ended, what happened)]."""
    from rq import Worker

    from portal.extensions import db
    from portal.lifecycle import moves
    from portal.models import Job, TenantMove
    from portal.services import jobqueue
    from portal.tenants.services import get_tenant

    faults = []

    def at(fraction):
        time.sleep(max(0.0, started + seconds * fraction - time.monotonic()))
        return time.monotonic()

    began = at(1 / 6)
    second.restart()
    faults.append(("second PostgreSQL server restarted", began, time.monotonic(), ""))
    log("fault: the second PostgreSQL server restarted")

    began = at(2 / 6)
    cluster.restart(1)
    faults.append(("Redis master restarted", began, time.monotonic(), f"port {cluster.ports[1]}"))
    log("fault: a Redis master restarted")

    began = at(3 / 6)
    victim = children(nodes[0].pid)[0]
    os.kill(victim, signal.SIGKILL)
    moved = tenants[1]  # a bridge tenant, moved to the pool by a job whose worker is killed
    with app.app_context():
        move, job = moves.request_move(get_tenant(moved["id"]), "pool", None, ACTOR)
        jobqueue.enqueue(job)
        job_id, move_id = job.id, move.id
        db.session.remove()
        while db.session.get(TenantMove, move_id).state == "queued" and time.monotonic() < began + 20:
            db.session.remove()  # (until the mover has begun: copying, the fence in place)
            time.sleep(0.02)
        running = [w.pid for w in Worker.all(connection=jobqueue.queue().connection) if w.get_current_job_id()]
        db.session.remove()
    killed = next((n for n, w in enumerate(workers) if w.pid in running), 0)
    os.killpg(workers[killed].pid, signal.SIGKILL)
    workers[killed].wait(10)
    faults.append(("gunicorn worker and job worker SIGKILLed", began, time.monotonic(),
                   f"gunicorn worker {victim}; the job worker in the middle of moving {moved['slug']}"))
    log(f"fault: a gunicorn worker and a job worker (moving {moved['slug']}) SIGKILLed")
    # A supervisor starts another; a job whose heartbeat is older than PORTAL_JOB_STALE_SECONDS
    # (10 here) is one a dead worker left: the new worker rolls its move back on start.
    time.sleep(11)
    workers[killed] = start_worker(config, folder, 3)

    began = at(4 / 6)
    bouncer.restart()
    faults.append(("PgBouncer restarted", began, time.monotonic(), ""))
    log("fault: PgBouncer restarted")

    time.sleep(max(0.0, started + seconds - time.monotonic()))
    with app.app_context():
        state, move = db.session.get(Job, job_id), db.session.get(TenantMove, move_id)
        outcome = f"job {state.state}, move {move.state}, the tenant in the {get_tenant(moved['id']).tier} tier"
        faults[2] = (*faults[2][:3], f"{faults[2][3]}: {outcome}")
        db.session.remove()
    return faults


def report(records, faults, tenants, started, args):
    tier_of = {t["index"]: t["tier"] for t in tenants}
    answered = [r for r in records if r[3] is not None]
    failed = [r for r in records if r[3] is None or r[3] >= 500]
    print()
    print(f"soak: {args.tenants} tenants, {args.clients} clients, {args.seconds} s, through nginx to two nodes")
    print(f"requests (tries): {len(records):,}; answered {len(answered):,}; 5xx or no answer {len(failed):,}; "
          f"retried {sum(1 for r in records if r[5] == 2):,}")
    print(f"answers carrying another tenant's marker: {sum(r[6] for r in records)}")
    print(f"{'kind':<18}{'tries':>8}{'p50 ms':>9}{'p99 ms':>9}{'5xx/none':>10}")
    by_kind = defaultdict(list)
    for r in records:
        by_kind[r[1]].append(r)
    for kind, rows in sorted(by_kind.items()):
        times = [r[4] * 1000 for r in rows if r[3] is not None]
        bad = sum(1 for r in rows if r[3] is None or r[3] >= 500)
        print(f"{kind:<18}{len(rows):>8,}{percentile(times, 50) if times else 0:>9.1f}"
              f"{percentile(times, 99) if times else 0:>9.1f}{bad:>10}")
    statuses = Counter(r[3] for r in records)
    print("statuses:", dict(sorted(statuses.items(), key=lambda item: str(item[0]))))
    print()
    print("faults (failed tries after each, until the next):")
    bounds = [f[1] for f in faults] + [started + args.seconds + 60]
    for n, (name, began, ended, note) in enumerate(faults):
        window = [r for r in failed if bounds[n] <= r[0] < bounds[n + 1]]
        gave_up = [r for r in window if r[5] == 2]
        by = Counter((r[1], tier_of[r[2]]) for r in window)
        span = f"{window[0][0] - began:.1f} to {window[-1][0] - began:.1f} s after it" if window else "none"
        print(f"- {name} ({ended - began:.1f} s to do; {note}): {len(window)} failed tries ({span}), "
              f"{len(gave_up)} still failed when retried; by kind and tier: {dict(by)}")


def report_errors(folder):
    """What the web nodes and workers logged as errors: each kind once, with its count."""
    found = Counter()
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".log") or not name.startswith(("node-", "worker-")):
            continue
        with open(os.path.join(folder, name), errors="replace") as lines:
            for line in lines:
                if not line.startswith("{") and ("[ERROR]" in line or "Error:" in line):  # gunicorn's own
                    found[("gunicorn", line.strip()[-200:])] += 1
                    continue
                if '"level": "error"' not in line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                lines = (entry.get("exception") or "").strip().splitlines()
                cause = [line for line in lines if "psycopg2." in line or "Error:" in line][-1:] or lines[-1:] or [""]
                found[(entry.get("message", ""), cause[0].strip()[:200])] += 1
    print()
    print("errors the nodes and workers logged:" if found else "errors the nodes and workers logged: none")
    for (message, exception), count in found.most_common():
        print(f"  {count:>4} x {message}: {exception}")


if __name__ == "__main__":
    main()
