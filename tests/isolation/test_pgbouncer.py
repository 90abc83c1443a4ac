"""Behind PgBouncer in transaction pooling, nothing of a tenant's transaction reaches the
next client of the same server connection (issue 17).

Poolers hand one server connection to client after client between transactions; the
peers we studied set the tenant with a session-level `SET` (or `search_path`), which the
next client then inherits. The portal sets the tenant, its role and its statement timeout
with `set_config(..., true)`: transaction-local. Here a PgBouncer with ONE server
connection makes the app's tenant sessions and another client share it, in turn and from
threads, with real commits; a session-level SET shows the harness would see a leak.
"""
import os
import threading
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal.dbsetup import owner_connection
from portal.tenancy.placement import TenantSession, install_engine_hooks
from tests.servers import PGBOUNCER, PgBouncer

pytestmark = pytest.mark.skipif(not os.path.exists(PGBOUNCER), reason="Debian's pgbouncer is not installed "
                                "(.ci/run installs it)")

ORDERS = {"x": 3, "y": 2}


@pytest.fixture()
def through_one_connection(app, servers):
    """(an engine of the app role through a one-connection PgBouncer, with the portal's
    hooks; a plain engine of another client through it; {name: tenant id} with committed
    orders in the pool's table)."""
    bouncer = PgBouncer(servers.owner_url, [servers.app_role], pool_size=1).start()
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(host="127.0.0.1", port=bouncer.port)
    portal_engine = create_engine(url, pool_size=4, max_overflow=0)
    install_engine_hooks(portal_engine)
    other_client = create_engine(url, pool_size=1, max_overflow=0)
    tenants = {name: str(uuid.uuid4()) for name in ORDERS}
    with owner_connection(servers.owner_url) as conn:
        for name, count in ORDERS.items():
            conn.execute(text(
                "insert into tenant_data.orders (tenant_id, id, number, customer, amount_cents, status, created_at) "
                "select :t, gen_random_uuid(), n, 'c' || n, n, 'open', now() from generate_series(1, :n) n"),
                {"t": tenants[name], "n": count})
    try:
        yield portal_engine, other_client, tenants
    finally:
        portal_engine.dispose()
        other_client.dispose()
        bouncer.stop()
        with owner_connection(servers.owner_url) as conn:
            conn.execute(text("delete from tenant_data.orders where tenant_id = any(cast(:ids as uuid[]))"),
                         {"ids": list(tenants.values())})


def _tenant_read(engine, tenant_id):
    """(orders seen, statement timeout, server pid) in a tenant transaction, committed."""
    with TenantSession(bind=engine, info={"tenant_id": tenant_id, "role": None, "timeout": 4321}) as session:
        with session.begin():
            seen = session.execute(text("select count(*) from tenant_data.orders")).scalar()
            timeout = session.execute(text("show statement_timeout")).scalar()
            pid = session.execute(text("select pg_backend_pid()")).scalar()
    return seen, timeout, pid


def _what_the_next_client_inherits(engine):
    with engine.connect() as conn:
        return conn.execute(text(
            "select current_setting('app.tenant_id', true), current_user, current_setting('statement_timeout'), "
            "(select count(*) from tenant_data.orders), pg_backend_pid()")).one()


def test_a_session_level_set_leaks_to_the_next_client(through_one_connection, servers):
    """The harness works: what the peers do (a session-level SET) does reach the next
    client, who then reads that tenant's rows."""
    portal_engine, other_client, tenants = through_one_connection
    with other_client.connect() as conn:
        conn.execute(text(f"set app.tenant_id = '{tenants['x']}'"))
        conn.commit()
    try:
        setting, _user, _timeout, orders, _pid = _what_the_next_client_inherits(portal_engine)
        assert (setting, orders) == (tenants["x"], ORDERS["x"])
    finally:
        with other_client.connect() as conn:
            conn.execute(text("reset all"))
            conn.commit()


def test_interleaved_tenant_transactions_leave_nothing_behind(through_one_connection, servers):
    portal_engine, other_client, tenants = through_one_connection
    pids = set()
    for _ in range(20):
        for name, tenant_id in tenants.items():
            seen, timeout, pid = _tenant_read(portal_engine, tenant_id)
            assert (seen, timeout) == (ORDERS[name], "4321ms")
            setting, user, timeout, orders, next_pid = _what_the_next_client_inherits(other_client)
            assert (setting or "", user, timeout, orders) == ("", servers.app_role, "0", 0)
            pids |= {pid, next_pid}
    assert len(pids) == 1  # one server connection served both clients throughout


def test_tenants_read_from_threads_through_one_server_connection(through_one_connection):
    portal_engine, _other, tenants = through_one_connection
    wrong, pids = [], set()

    def reader(name):
        for _ in range(25):
            seen, timeout, pid = _tenant_read(portal_engine, tenants[name])
            pids.add(pid)
            if (seen, timeout) != (ORDERS[name], "4321ms"):
                wrong.append((name, seen, timeout))

    threads = [threading.Thread(target=reader, args=(name,)) for name in ORDERS for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert wrong == [] and len(pids) == 1


def test_the_app_role_serves_through_the_pooler_it_is_given(app, servers):
    """PORTAL_APP_DATABASE_HOST sends the app role's connections through PgBouncer: the
    portal is ready through it, and not once it stops (the owner's connections, for
    migrations and DDL, stay direct). A host without a port is refused at start."""
    from portal import create_app
    from portal.config import ConfigError
    from portal.extensions import db
    from tests.conftest import app_config

    bouncer = PgBouncer(servers.owner_url, [servers.app_role], pool_size=2).start()
    behind = create_app(app_config(servers, PORTAL_APP_DATABASE_HOST=bouncer.host))
    try:
        assert make_url(behind.config["SQLALCHEMY_DATABASE_URI"]).port == bouncer.port
        assert behind.test_client().get("/readyz").status_code == 200
        bouncer.stop()
        with behind.app_context():
            db.engine.dispose()  # (its pooled connections went with the pooler)
        answer = behind.test_client().get("/readyz")
        assert answer.status_code == 503 and "database" in answer.get_json()["failing"]
    finally:
        bouncer.stop()
        with behind.app_context():
            db.engine.dispose()
    with pytest.raises(ConfigError, match="host:port"):
        create_app(app_config(servers, PORTAL_APP_DATABASE_HOST="127.0.0.1"))
