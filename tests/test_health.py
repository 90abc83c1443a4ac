"""/healthz and /readyz (portal/health.py): any host, no tenant, no sign-in, no rate limit;
readiness names what is wrong (Redis, the database, the migrations), and comes back when
they do. The shared servers are never stopped: the broken ones are closed ports, and a
server that "stops and returns" is a forwarder on loopback the test closes and reopens."""
import json
import logging
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

import pytest

from portal import create_app
from portal.extensions import db
from portal.health import migration_problem, registry_heads
from portal.logs import JsonFormatter
from tests.conftest import app_config
from tests.factories import sign_in_tenant
from tests.support.helpers import impersonate
from tests.test_metrics import limit_requests


def closed_port():
    """A loopback port nobody listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def on_port(url, port):
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture()
def make_app(servers):
    made = []

    def make(**overrides):
        made.append(create_app(app_config(servers, **overrides)))
        return made[-1]

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()


def ready(app):
    response = app.test_client().get("/readyz")
    return response.status_code, response.get_json()


def test_healthz_answers_on_any_host(client, factory):
    tenant = factory.tenant()
    for host in ("localhost", "10.0.0.7:8000", "nobody.portal.test", "not a host!", f"{tenant.slug}.portal.test"):
        response = client.get("/healthz", headers={"Host": host})
        assert response.status_code == 200, host
        assert response.get_json() == {"status": "ok"}
    # even with a tenant header meant for the API, or from a far address
    assert client.get("/healthz", headers={"X-Tenant-ID": tenant.slug},
                      environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200


def test_readyz_is_200_when_all_is_well(client):
    response = client.get("/readyz", headers={"Host": "unknown.example"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"status": "ready",
                                   "checks": {"database": "ok", "redis": "ok", "migrations": "ok"}}


def test_readyz_names_redis_when_redis_is_unreachable(make_app):
    status, body = ready(make_app(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0"))
    assert status == 503
    assert body["failing"] == ["redis"] and body["checks"]["database"] == "ok"
    assert "127.0.0.1" not in json.dumps(body)  # what is wrong, not where


def test_readyz_names_the_database_when_it_is_unreachable(servers, make_app):
    status, body = ready(make_app(DATABASE_URL=on_port(servers.owner_url, closed_port())))
    assert status == 503
    assert "database" in body["failing"] and "migrations" in body["failing"]
    assert body["checks"]["redis"] == "ok"


def test_health_checks_are_not_rate_limited_nor_need_sign_in(client, factory):
    tenant = factory.tenant()
    limit_requests(tenant, "1")
    for _ in range(5):  # the ops paths never carry a tenant, so never its limit
        assert client.get("/readyz", headers={"Host": f"{tenant.slug}.portal.test"}).status_code == 200
    assert client.get(f"/t/{tenant.slug}/healthz").status_code in (404, 429)  # not these: under a tenant


def test_the_migration_comparison():
    heads, tenant = frozenset({"0012"}), "t0005"
    assert migration_problem({"0012"}, heads, tenant) is None
    assert "at 0011, the code at 0012" in migration_problem({"0011"}, heads, tenant)
    assert "no migrations" in migration_problem(set(), heads, tenant)
    assert "tenant history" in migration_problem({"0012"}, heads, None)
    assert len(registry_heads()) == 1


def test_readiness_sees_the_registry_behind_the_code(app, servers):
    """The registry stamped an older revision, in a transaction rolled back at the end."""
    from sqlalchemy import text

    from portal.dbsetup import owner_engine
    from portal.health import readiness

    engine = owner_engine(servers.owner_url)
    try:
        with engine.connect() as owner:
            outer = owner.begin()
            owner.execute(text("update registry.alembic_version set version_num = '0001'"))
            db.session.session_factory.configure(bind=owner, join_transaction_mode="create_savepoint")
            try:
                with app.app_context():
                    checks = readiness(app)
                    db.session.remove()
            finally:
                db.session.session_factory.configure(bind=None, join_transaction_mode="conditional_savepoint")
                outer.rollback()
    finally:
        engine.dispose()
    assert checks["database"] == "ok" and checks["redis"] == "ok"
    assert "the registry database is at 0001" in checks["migrations"]


# -- a server that stops and returns ------------------------------------------------------
class Forwarder:
    """A TCP forwarder on a loopback port to `target`, that can be stopped (its listener and
    every connection closed) and started again on the same port."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.port = closed_port()
        self.sockets, self.listener = [], None

    def start(self):
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.sockets = []

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (a, b):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_readiness_fails_while_redis_and_the_database_are_away_and_recovers(servers, make_app):
    redis_port = urlsplit(servers.redis_url).port or 6379
    pg_port = urlsplit(servers.owner_url).port or 5432
    to_redis, to_pg = Forwarder(redis_port), Forwarder(pg_port)
    to_redis.start()
    to_pg.start()
    try:
        app = make_app(REDIS_URL=on_port(servers.redis_url, to_redis.port),
                       DATABASE_URL=on_port(servers.owner_url, to_pg.port))
        assert ready(app)[0] == 200
        to_redis.stop()
        status, body = ready(app)
        assert status == 503 and body["failing"] == ["redis"]
        to_redis.start()
        assert ready(app)[0] == 200
        to_pg.stop()
        status, body = ready(app)
        assert status == 503 and "database" in body["failing"]
        to_pg.start()
        assert ready(app) == (200, {"status": "ready", "checks": {"database": "ok", "redis": "ok",
                                                                   "migrations": "ok"}})
    finally:
        for forwarder in (to_redis, to_pg):
            try:
                forwarder.stop()
            except OSError:
                pass


# -- the request's log line --------------------------------------------------------------------
class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture()
def request_lines():
    handler = Lines()
    logger = logging.getLogger("portal.requests")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def line_of(lines, request_id):
    found = [line for line in lines if line.get("request_id") == request_id and line["message"] == "request"]
    assert len(found) == 1, lines
    return found[0]


def test_a_request_line_carries_id_tenant_user_and_duration(client, factory, request_lines):
    tenant = factory.tenant()
    user = factory.admin(tenant)
    sign_in_tenant(client, tenant, user)
    response = client.get(f"/t/{tenant.slug}/users", headers={"X-Request-ID": "req-line-1"})
    assert response.status_code == 200 and response.get_data()  # the line is written once the body is sent
    line = line_of(request_lines, "req-line-1")
    assert line["tenant"] == tenant.slug
    assert line["user"] == f"tenant:{tenant.id}:{user.id}"
    assert line["impersonator"] is None
    assert line["status"] == 200 and line["method"] == "GET" and line["path"] == f"/t/{tenant.slug}/users"
    assert line["endpoint"] == "users.index"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "info" and line["logger"] == "portal.requests"


def test_an_impersonated_requests_line_names_the_staff_member(client, factory, request_lines):
    tenant = factory.tenant()
    user = factory.admin(tenant)
    staff, _ = impersonate(client, factory, tenant, user)
    response = client.get(f"/t/{tenant.slug}/users", headers={"X-Request-ID": "req-line-2"})
    assert response.status_code == 200 and response.get_data()
    line = line_of(request_lines, "req-line-2")
    assert line["tenant"] == tenant.slug
    assert line["user"] == f"tenant:{tenant.id}:{user.id}"
    assert line["impersonator"] == f"staff:{staff.id}"
    assert line["duration_ms"] >= 0


def test_a_refusal_before_the_app_has_its_line_too(client, request_lines):
    response = client.get("/t/no-such-tenant-here/login", headers={"X-Request-ID": "req-line-3"})
    assert response.status_code == 404 and response.get_data()
    line = line_of(request_lines, "req-line-3")
    assert line["tenant"] is None and line["user"] is None and line["status"] == 404
    assert "duration_ms" in line


def test_a_staff_request_line(client, factory, request_lines):
    from tests.factories import sign_in_staff

    staff = factory.staff("viewer")
    sign_in_staff(client, staff)
    response = client.get("/admin/tenants", headers={"X-Request-ID": "req-line-4"})
    assert response.status_code == 200 and response.get_data()
    line = line_of(request_lines, "req-line-4")
    assert line["user"] == f"staff:{staff.id}" and line["tenant"] is None and line["impersonator"] is None
