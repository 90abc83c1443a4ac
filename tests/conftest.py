"""Fixtures: a database per test run, an app bound to it, and each test in a
transaction that is rolled back at the end (savepoints inside it)."""
import atexit
import os
import shutil
import tempfile

import pytest
from flask.testing import FlaskClient

from portal import create_app
from portal.dbsetup import setup_database
from portal.extensions import db
from portal.services import jobqueue
from tests.servers import PgBouncer, RedisCluster, TestServers, redis_client_of

BASE_DOMAIN = "portal.test"


def app_config(servers, **overrides):
    config = {
        "DATABASE_URL": servers.owner_url,
        "REDIS_URL": servers.redis_url,
        "PORTAL_APP_ROLE": servers.app_role,
        "PORTAL_REDIS_PREFIX": servers.redis_prefix,
        "PORTAL_NAME_PREFIX": servers.name_prefix,
        "PORTAL_EXPORT_DIR": servers.export_dir,
        "PORTAL_BASE_DOMAIN": BASE_DOMAIN,
        "PORTAL_ADMIN_HOSTS": "localhost,127.0.0.1",
        "SECRET_KEY": "test-secret-" + servers.run_id,
        "TESTING": True,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 8192,
        # A test holds its transaction open on the pool's tables: a fence there gives up fast.
        "FENCE_LOCK_TIMEOUT_MS": 100,
        "FENCE_ATTEMPTS": 2,
        # Quotas and Top take their snapshot of figures on every view: a test sees what it set.
        "CONSOLE_FIGURES_MAX_AGE_SECONDS": 0,
        # Tests move tenants there and back at once; tests/moves/test_move_keep.py checks the wait.
        "MOVE_MIN_KEEP_SECONDS": 0,
    }
    if servers.pgbouncer is not None:  # PORTAL_TEST_PGBOUNCER=1: the app role through it
        config["PORTAL_APP_DATABASE_HOST"] = servers.pgbouncer.host
    if servers.redis_cluster is not None:  # PORTAL_TEST_REDIS_CLUSTER=1: the portal's keys on it
        config.update(REDIS_URL=servers.redis_cluster.url, REDIS_CLUSTER=True, RQ_REDIS_URL=servers.redis_url)
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def servers():
    """The test run's database and roles; with PORTAL_TEST_PGBOUNCER=1, also a PgBouncer in
    transaction pooling that every connection of the app role goes through (`make
    test-pgbouncer` runs the isolation and tenancy suites so)."""
    servers = TestServers()
    servers.create()
    if os.environ.get("PORTAL_TEST_PGBOUNCER") == "1":
        servers.pgbouncer = PgBouncer(servers.owner_url, [servers.app_role]).start()
    if os.environ.get("PORTAL_TEST_REDIS_CLUSTER") == "1":
        servers.redis_cluster = RedisCluster().start()
    yield servers
    if servers.pgbouncer is not None:
        servers.pgbouncer.stop()
    if servers.redis_cluster is not None:
        servers.redis_cluster.stop()
    servers.drop()


@pytest.fixture(scope="session")
def app(servers):
    app = create_app(app_config(servers))
    setup_database(app.config)
    yield app
    with app.app_context():
        db.engine.dispose()


SECOND_SERVER_ENV = "PORTAL_TEST_SECOND_SERVER_URL"


@pytest.fixture(scope="session")
def second_server():
    """A second PostgreSQL server (the embedded one, on its own socket) for silo
    placements; its URL is in the environment variable SECOND_SERVER_ENV. (Its folder is
    not one of pytest's numbered temporary folders: another pytest run may prune those.)"""
    from portal.embedded import Embedded

    folder = tempfile.mkdtemp(prefix="portal-second-pg-")
    os.chmod(folder, 0o755)  # pgserver runs PostgreSQL as its own user when we are root
    atexit.register(shutil.rmtree, folder, True)  # runs after pgserver's own stop (LIFO)
    embedded = Embedded(folder)
    url = embedded.start_postgres_only("postgres")
    os.environ[SECOND_SERVER_ENV] = url
    yield url
    os.environ.pop(SECOND_SERVER_ENV, None)


@pytest.fixture(scope="session")
def redis_client(servers):
    cluster = servers.redis_cluster
    client = redis_client_of(cluster.url if cluster else servers.redis_url, cluster=cluster is not None)
    yield client
    client.close()


def clear_redis(client, prefix):
    for key in client.scan_iter(match=f"{prefix}:*", count=500):
        client.unlink(key)


@pytest.fixture()
def conn(app, redis_client, servers):
    """The app's connection for this test, inside a transaction rolled back at the end."""
    with app.app_context():
        connection = db.engine.connect()
    outer = connection.begin()
    db.session.session_factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    app.extensions["portal.test_bind"] = connection
    ctx = app.app_context()
    ctx.push()
    try:
        yield connection
    finally:
        db.session.remove()
        ctx.pop()
        db.session.session_factory.configure(bind=None, join_transaction_mode="conditional_savepoint")
        app.extensions.pop("portal.test_bind", None)
        outer.rollback()
        connection.close()
        app.extensions["portal.tenant_lookup"].clear_local()
        app.extensions["portal.entitlements"].forget()
        clear_redis(redis_client, servers.redis_prefix)
        with app.app_context():
            jobqueue.queue().empty()  # jobs of this test would find their records rolled back


class FreshContextClient(FlaskClient):
    """Each request in an app context of its own, as in production.

    The test holds an app context open (for services it calls directly); Flask would
    reuse it for requests, so `g` (and Flask-Login's cached user) would leak from one
    request into the next."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            response = super().open(*args, **kwargs)
            # One connection holds everything here: a tenant session's savepoint sits
            # inside the registry session's, and closing the registry session would roll
            # both back. In production they are separate transactions: end the registry
            # session's as the request left it, so the tenant's committed rows stay.
            db.session.commit()
            return response


@pytest.fixture()
def client(app, conn):
    app.test_client_class = FreshContextClient
    return app.test_client()


@pytest.fixture()
def factory(app, conn):
    from tests.factories import Factory

    return Factory(app)


@pytest.fixture()
def run_jobs(app, conn):
    """Run the queued jobs now, in this thread, with RQ's own worker (burst mode): the
    jobs see this test's transaction. Returns how many ran."""
    from rq import SimpleWorker

    from portal.services import jobqueue

    def run():
        queue = jobqueue.queue()
        count = len(queue)
        SimpleWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")
        return count

    return run


@pytest.fixture()
def a_and_b(factory):
    """Tenants A and B (professional), each with an admin's token; B with an order."""
    from tests.factories import make_token

    a, b = factory.tenant(plan="professional"), factory.tenant(plan="professional")
    a_admin, b_admin = factory.admin(a), factory.admin(b)
    b_order = factory.order(b, number=900, customer="Secret B Customer")
    return a, b, make_token(a, a_admin), make_token(b, b_admin), b_order
