"""Redis stopped: rate limits fail open (pages keep serving, a warning is logged), or
closed when RATE_LIMIT_FAIL_OPEN is off.

A throwaway redis-server on a free port serves a second app built on the test database.
That app's connections cannot see the `conn` fixture's uncommitted rows, so this test
uses neither `conn` nor `factory`: it commits its tenant through the second app and
deletes its rows in a `finally` (audit events stay: they are append-only).
"""
import logging
import subprocess
import time

import redis as redis_lib
from sqlalchemy import text

from portal import create_app
from portal.dbsetup import owner_engine
from portal.extensions import db
from portal.tenancy.data import TENANT_TABLES
from portal.tenancy.placement import tenant_transaction
from tests.conftest import FreshContextClient, app_config
from tests.factories import Factory, sign_in_tenant
from tests.servers import free_port

REDIS_SERVER = "/usr/bin/redis-server"


def _start_redis(port):
    process = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = redis_lib.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            probe.ping()
            return process
        except redis_lib.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
        finally:
            probe.close()


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _remove_tenant(app2, ref):
    with app2.app_context():
        with tenant_transaction(ref) as session:
            for table in reversed(TENANT_TABLES):
                session.execute(table.delete())
        engine = owner_engine(app2.config["DATABASE_URL"])
        try:
            with engine.begin() as conn:
                conn.execute(text("delete from registry.jobs where tenant_id = :id"), {"id": ref.id})
                gone = conn.execute(text("delete from registry.tenants where id = :id"), {"id": ref.id})
                assert gone.rowcount == 1
        finally:
            engine.dispose()


def test_pages_serve_when_redis_stops(app, servers):
    port = free_port()
    process = _start_redis(port)
    records, ratelimit_log = _Records(), logging.getLogger("portal.services.ratelimit")
    app2 = ref = None
    try:
        # (a plain Redis of its own, also in the run on a Redis Cluster: what stops is this one)
        app2 = create_app(app_config(servers, REDIS_URL=f"redis://127.0.0.1:{port}/0", REDIS_CLUSTER=False))
        app2.test_client_class = FreshContextClient
        with app2.app_context():
            factory = Factory(app2)
            ref = factory.tenant(plan="basic")  # committed
            admin = factory.admin(ref)
        client = app2.test_client()
        home, api = f"/t/{ref.slug}/", ("/api/v1/status", {"X-Tenant-ID": ref.slug})
        sign_in_tenant(client, ref, admin)
        assert client.get(home).status_code == 200
        up = client.get(api[0], headers=api[1])
        assert up.status_code == 200 and up.headers["X-RateLimit-Remaining"] == "999"

        process.terminate()
        process.wait(10)
        ratelimit_log.addHandler(records)
        for page in ("", "orders", "usage", "plan"):
            assert client.get(f"{home}{page}").status_code == 200, page
        assert client.get(api[0], headers=api[1]).status_code == 200
        assert any("Redis unreachable, failing open" in m for m in records.messages)

        app2.config["RATE_LIMIT_FAIL_OPEN"] = False
        closed = client.get(home)
        assert closed.status_code == 429 and "Retry-After" in closed.headers
        closed_api = client.get(api[0], headers=api[1])
        assert closed_api.status_code == 429 and closed_api.json["error"]["code"] == 429
        assert any("Redis unreachable, failing closed" in m for m in records.messages)
    finally:
        ratelimit_log.removeHandler(records)
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if app2 is not None:
            if ref is not None:
                _remove_tenant(app2, ref)
            with app2.app_context():
                db.engine.dispose()
