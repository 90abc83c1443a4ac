"""Threads switching tenants of every tier: each query sees only its own tenant's rows,
and a pooled connection carries no tenant into the next transaction.

16 threads x 500 random switches between pool, bridge and silo tenants (a silo on the
registry's server and one on a second server). This test needs a committed world that
other threads can see, so it uses neither `conn` nor `factory` (they bind sessions to
one test connection, rolled back at the end): it makes the storage and rows for real
and removes them in a `finally`.
"""
import random
import threading
import uuid

from sqlalchemy import delete, func, select, text, update

from portal.extensions import db
from portal.lifecycle.storage import create_storage, drop_storage
from portal.tenancy.context import TenantRef, tenant_context
from portal.tenancy.data import Order, TenantSetting, TenantUser
from portal.tenancy.names import role_name
from portal.tenancy.placement import placement_owner_url, silo_url, tenant_session, tenant_transaction
from tests.conftest import SECOND_SERVER_ENV

THREADS = 16
SWITCHES = 500
# (tier, placement_env): None for pool and bridge, "" for a silo on the registry's
# server, the environment variable's name for a silo on the second server.
SPECS = [
    ("pool", None), ("pool", None), ("pool", None),
    ("bridge", None), ("bridge", None),
    ("silo", ""), ("silo", SECOND_SERVER_ENV),
]


def _ref(tier, placement_env):
    tenant_id = uuid.uuid4()
    slug = f"cc-{tier}-{tenant_id.hex[:8]}"
    return TenantRef(id=tenant_id, slug=slug, name=f"Tenant {slug}", status="active", tier=tier,
                     plan_code="basic", placement_env=placement_env)


def _seed(ref, index):
    """A distinct, known set of rows for `ref` (committed); returns what to expect."""
    tag = ref.id.hex[:8]
    known = {
        "customers": {f"{tag}-customer-{n}" for n in range(3 + index)},  # sizes differ too
        "emails": {f"user-{n}@{tag}.example" for n in range(2)},
        "settings": {f"{tag}-key-{n}" for n in range(2)},
    }
    with tenant_transaction(ref) as session:
        session.add_all(Order(tenant_id=ref.id, number=n, customer=customer, amount_cents=100 * n, status="open")
                        for n, customer in enumerate(sorted(known["customers"]), start=1))
        session.add_all(TenantUser(tenant_id=ref.id, email=email, name="", role="member")
                        for email in sorted(known["emails"]))
        session.add_all(TenantSetting(tenant_id=ref.id, key=key, value={"value": key})
                        for key in sorted(known["settings"]))
    return known


def _delete_rows(ref):
    with tenant_transaction(ref) as session:
        for model in (Order, TenantUser, TenantSetting):
            session.execute(delete(model))


def _check_rows(ref, what, rows, expected, failures, where):
    foreign = {str(tenant_id) for tenant_id, _ in rows if tenant_id != ref.id}
    if foreign:
        failures.append(f"{where}: {what} of tenants {sorted(foreign)} seen by {ref.slug} ({ref.tier})")
    got = {value for _, value in rows}
    if got != expected:
        failures.append(f"{where}: {ref.slug} ({ref.tier}) {what}: got {sorted(got)}, want {sorted(expected)}")


def _switch(app, ref, known, rng, failures, where):
    """One switch: bind `ref`, query its rows in one or two transactions."""
    roll = rng.random()
    with app.app_context(), tenant_context(ref):
        with tenant_session() as session:
            rows = session.execute(select(Order.tenant_id, Order.customer)).all()
            _check_rows(ref, "orders", rows, known["customers"], failures, where)
            if roll < 0.25:
                rows = session.execute(select(TenantUser.tenant_id, TenantUser.email)).all()
                _check_rows(ref, "users", rows, known["emails"], failures, where)
            elif roll < 0.45:
                rows = session.execute(select(TenantSetting.tenant_id, TenantSetting.key)).all()
                _check_rows(ref, "settings", rows, known["settings"], failures, where)
            elif roll < 0.55:
                # An UPDATE with no WHERE reaches this tenant's rows only; then undone.
                changed = session.execute(update(Order).values(status="touched")).rowcount
                if changed != len(known["customers"]):
                    failures.append(f"{where}: unfiltered UPDATE as {ref.slug} ({ref.tier}) changed {changed} rows, "
                                    f"want {len(known['customers'])}")
                session.rollback()
            if roll > 0.85:
                # A second transaction in the same session: bound to the tenant again.
                session.commit()
                count = session.execute(select(func.count()).select_from(Order)).scalar_one()
                if count != len(known["customers"]):
                    failures.append(f"{where}: second transaction of {ref.slug} ({ref.tier}) "
                                    f"counted {count} orders, want {len(known['customers'])}")


def _probe_no_tenant(app, failures, where):
    """A plain app-role transaction, as the next user of a pooled connection gets it."""
    with app.app_context():
        with db.engine.connect() as connection:
            tenant, user, orders = connection.execute(text(
                "select current_setting('app.tenant_id', true), current_user, "
                "(select count(*) from tenant_data.orders)")).one()
    if tenant not in ("", None) or user != app.config["PORTAL_APP_ROLE"] or orders != 0:
        failures.append(f"{where}: a fresh app-role transaction carried app.tenant_id={tenant!r}, "
                        f"current_user={user!r}, saw {orders} pool orders")


def _worker(app, index, seed, world, barrier, failures):
    rng = random.Random(seed * 1000 + index)
    refs = list(world)
    barrier.wait()
    for n in range(SWITCHES):
        ref = rng.choice(refs)
        where = f"thread {index} switch {n} (seed {seed})"
        try:
            _switch(app, ref, world[ref], rng, failures, where)
            if n % 25 == 0:
                _probe_no_tenant(app, failures, where)
        except Exception as exc:  # reported with the others; the thread goes on
            failures.append(f"{where}: {ref.slug} ({ref.tier}) raised {exc!r}")


def _fresh_transaction_state(connection):
    with connection.begin():
        return connection.execute(text(
            "select current_setting('app.tenant_id', true), current_user, pg_backend_pid()")).one()


def _check_pool_after(app, refs):
    """Every connection left in the app engine's pool (and in the silo engines' pools)
    starts a fresh transaction with no tenant and its own role."""
    problems = []
    with app.app_context():
        engine = db.engine
        idle = engine.pool.checkedin()
        # Hold them all at once, so that each pooled connection is looked at.
        connections = [engine.connect() for _ in range(idle)]
        try:
            states = [_fresh_transaction_state(c) for c in connections]
        finally:
            for connection in connections:
                connection.close()
        assert idle >= 2, f"the threads left only {idle} connection(s) in the app engine's pool"
        if not app.config.get("PORTAL_APP_DATABASE_HOST"):  # (behind PgBouncer they share server connections)
            assert len({pid for _, _, pid in states}) == idle
        for tenant, user, pid in states:
            if tenant not in ("", None) or user != app.config["PORTAL_APP_ROLE"]:
                problems.append(f"app engine backend {pid}: app.tenant_id={tenant!r}, current_user={user!r}")
        silo_engines = app.extensions["portal.silo_engines"]
        for ref in refs:
            if ref.tier != "silo":
                continue
            engine = silo_engines.get(ref.id, silo_url(ref, placement_owner_url(ref.placement_env)))
            connections = [engine.connect() for _ in range(engine.pool.checkedin())]
            try:
                for tenant, user, pid in (_fresh_transaction_state(c) for c in connections):
                    if tenant not in ("", None) or user != role_name(ref.id):
                        problems.append(f"silo {ref.slug} backend {pid}: app.tenant_id={tenant!r}, "
                                        f"current_user={user!r}")
            finally:
                for connection in connections:
                    connection.close()
    return problems


def test_threads_switching_tenants_of_every_tier_see_only_their_own_rows(app, second_server):
    seed = random.randrange(1_000_000)
    refs = [_ref(tier, env) for tier, env in SPECS]
    made, seeded = [], []
    try:
        with app.app_context():
            for ref in refs:
                if ref.tier != "pool":
                    create_storage(ref.id, ref.tier, ref.placement_env)
                    made.append(ref)
            world = {}
            for index, ref in enumerate(refs):
                seeded.append(ref)
                world[ref] = _seed(ref, index)

        failures = []
        barrier = threading.Barrier(THREADS)
        threads = [threading.Thread(target=_worker, args=(app, i, seed, world, barrier, failures))
                   for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert not failures, f"{len(failures)} failures (seed {seed}), first ones:\n" + "\n".join(failures[:20])
        problems = _check_pool_after(app, refs)
        assert not problems, "\n".join(problems)
    finally:
        with app.app_context():
            for ref in seeded:
                if ref.tier == "pool":
                    _delete_rows(ref)
            for ref in made:
                drop_storage(ref.id, ref.tier, ref.placement_env)
