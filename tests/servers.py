"""The PostgreSQL and Redis the tests use: PORTAL_TEST_DATABASE_URL and
PORTAL_TEST_REDIS_URL when set (CI), else the embedded ones in a temporary folder.
Each run creates its own database and roles with unique names and drops them."""
import atexit
import os
import shutil
import socket
import tempfile
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


class TestServers:
    def __init__(self):
        self.run_id = uuid.uuid4().hex[:10]
        self.database = f"portal_test_{self.run_id}"
        self.app_role = f"portal_test_app_{self.run_id}"
        self.redis_prefix = f"portaltest{self.run_id}"
        # Bridge and silo tenants' roles and databases start with this; dropped at the end.
        self.name_prefix = f"pt{self.run_id}_"
        self.export_dir = tempfile.mkdtemp(prefix="portal-test-exports-")
        self._embedded = None
        self.pgbouncer = None  # a PgBouncer the app role goes through (tests/conftest.py)
        self.redis_cluster = None  # a Redis Cluster the portal's keys live on (tests/conftest.py)
        admin_url = os.environ.get("PORTAL_TEST_DATABASE_URL")
        self.redis_url = os.environ.get("PORTAL_TEST_REDIS_URL")
        if not admin_url or not self.redis_url:
            from portal.embedded import Embedded

            self._tmp = tempfile.mkdtemp(prefix="portal-test-")
            os.chmod(self._tmp, 0o755)  # pgserver runs PostgreSQL as its own user when we are root
            atexit.register(shutil.rmtree, self._tmp, True)  # after the servers stop (LIFO)
            self._embedded = Embedded(self._tmp)
            embedded_db, embedded_redis = self._embedded.start("postgres")
            admin_url = admin_url or embedded_db
            self.redis_url = self.redis_url or embedded_redis
        self.admin_url = make_url(admin_url).set(drivername="postgresql+psycopg2")
        self.owner_url = self.admin_url.set(database=self.database).render_as_string(hide_password=False)

    def admin_engine(self):
        return create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    def create(self):
        engine = self.admin_engine()
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.database}"'))
        engine.dispose()

    def drop(self):
        shutil.rmtree(self.export_dir, ignore_errors=True)
        engine = self.admin_engine()
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
            pattern = {"p": self.name_prefix.replace("_", "\\_") + "%"}
            for (name,) in conn.execute(text("select datname from pg_database where datname like :p"), pattern):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            tenant_roles = conn.execute(text("select rolname from pg_roles where rolname like :p"), pattern)
            for role in [r for (r,) in tenant_roles] + [self.app_role]:
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        engine.dispose()


def free_port():
    """A TCP port free on 127.0.0.1 now, for a server a test starts on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PGBOUNCER = "/usr/sbin/pgbouncer"


class PgBouncer:
    """Debian's PgBouncer on loopback, in transaction pooling, in front of one PostgreSQL
    server: every database there, for the roles named (trust, as the servers here are).
    `pool_size` server connections per database and role: 1 makes every client share one."""

    def __init__(self, server_url, roles, pool_size=20):
        url = make_url(server_url)
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="portal-pgbouncer-")
        os.chmod(self.folder, 0o755)
        with open(os.path.join(self.folder, "users.txt"), "w") as users:
            users.writelines(f'"{role}" ""\n' for role in roles)
        with open(os.path.join(self.folder, "pgbouncer.ini"), "w") as ini:
            ini.write(f"""[databases]
* = host={url.host or '127.0.0.1'} port={url.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.folder}/users.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits
""")
        for name in os.listdir(self.folder):
            os.chmod(os.path.join(self.folder, name), 0o644)
        self.process = None

    def start(self):
        import subprocess
        import time

        # PgBouncer will not run as root: as postgres, then (the Debian package's user).
        user = ["-u", "postgres"] if os.geteuid() == 0 else []
        log_path = os.path.join(self.folder, "pgbouncer.log")  # (its log goes to stderr: ours to open)
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen([PGBOUNCER, *user, os.path.join(self.folder, "pgbouncer.ini")],
                                            stdout=log, stderr=subprocess.STDOUT)
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.process.poll() is not None:
                with open(log_path) as log:
                    raise RuntimeError(f"pgbouncer did not start: {log.read()}")
            time.sleep(0.05)
        raise RuntimeError("pgbouncer did not listen within 5 s")

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def restart(self):
        """Stop it (its server connections close) and start it again on the same port."""
        self.process.terminate()
        self.process.wait(10)
        return self.start()

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


REDIS_SERVER, REDIS_CLI = "/usr/bin/redis-server", "/usr/bin/redis-cli"


def _cluster_ports(count):
    """`count` ports free on loopback whose cluster bus ports (port + 10000) are free too."""
    ports = []
    while len(ports) < count:
        port = free_port()
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port + 10000)) != 0:
                ports.append(port)
    return ports


class RedisCluster:
    """A Redis Cluster of `masters` masters (no replicas) on loopback, from Debian's
    redis-server, nothing kept on disk but in its temporary folder."""

    def __init__(self, masters=3):
        self.ports = _cluster_ports(masters)
        self.folder = tempfile.mkdtemp(prefix="portal-redis-cluster-")
        self.processes = []

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def _node(self, port):
        import subprocess
        import time

        process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", f"nodes-{port}.conf", "--dir", self.folder, "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        return process

    def _wait_ok(self):
        import subprocess
        import time

        for _ in range(400):
            info = subprocess.run([REDIS_CLI, "-p", str(self.ports[0]), "cluster", "info"], capture_output=True,
                                  text=True).stdout
            if "cluster_state:ok" in info:
                return self
            time.sleep(0.05)
        raise RuntimeError(f"the Redis Cluster is not ok: {info}")

    def start(self):
        import subprocess

        self.processes = [self._node(port) for port in self.ports]
        subprocess.run([REDIS_CLI, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        return self._wait_ok()

    def restart(self, index):
        """Stop master `index` and start it again (its node file keeps its identity and
        slots; with no replica, its slots are down meanwhile, and empty after)."""
        self.processes[index].terminate()
        self.processes[index].wait(10)
        self.processes[index] = self._node(self.ports[index])
        return self._wait_ok()

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def redis_client_of(url, cluster=False):
    """A client of the tests' own (decoded strings), for a plain Redis or a cluster."""
    import redis
    import redis.cluster

    if cluster:
        return redis.cluster.RedisCluster.from_url(url, decode_responses=True)
    return redis.Redis.from_url(url, decode_responses=True)


NGINX = "/usr/sbin/nginx"


def nginx(port, upstreams, folder):
    """Debian's nginx on 127.0.0.1:`port`, balancing round robin over the web nodes at
    `upstreams` (ports), with the shipped refusal cache (deploy/nginx/), its files in
    `folder`; each answer names the node that gave it (`X-Upstream`) and whether the cache
    gave it (`X-Refusal-Cache`: HIT). Returns the process (stop it with terminate)."""
    import subprocess

    snippets = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy", "nginx")
    conf = os.path.join(folder, "nginx.conf")
    servers = "".join(f"    server 127.0.0.1:{p};\n" for p in upstreams)
    temp = "".join(f"  {kind}_temp_path {folder}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi",
                                                                          "uwsgi", "scgi"))
    with open(conf, "w") as out:
        out.write(f"""user root;
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
{temp}  include {snippets}/portal-refusals-maps.conf;
  proxy_cache_path {folder}/refusals keys_zone=portal_refusals:1m max_size=8m inactive=10s use_temp_path=off;
  upstream portal {{
{servers}  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://portal;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      add_header X-Upstream $upstream_addr always;
      add_header X-Refusal-Cache $upstream_cache_status always;
      include {snippets}/portal-refusals.conf;
    }}
  }}
}}
""")
    return subprocess.Popen([NGINX, "-c", conf, "-p", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(url, process, log=None, seconds=60):
    """Until `url` answers 200 (a server's /readyz); RuntimeError, with the end of its
    `log` file if given, when `process` ends first or the time runs out."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            ended = ""
            if log:
                with open(log, errors="replace") as found:
                    ended = found.read()[-2000:]
            raise RuntimeError(f"{url}: the process ended. {ended}")
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer 200 in {seconds} s")
