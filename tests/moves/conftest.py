"""Moves commit for real (a fence is DDL on the tenant's tables, from a connection of its
own): an app on the test database with no outer transaction, tenants made and removed
for each test, and the catalogs of both servers checked for anything left behind."""
import os
import uuid

import pytest
from sqlalchemy import delete, func, select, text

from portal import create_app
from portal.auth.services import create_staff_user
from portal.dbsetup import owner_connection
from portal.extensions import db
from portal.lifecycle import moves, placements, provisioning
from portal.lifecycle.exports import delete_rows
from portal.lifecycle.fences import SCHEMA
from portal.lifecycle.storage import drop_storage
from portal.models import Job, Placement, Tenant, TenantMove
from portal.services import jobqueue
from portal.tenancy.context import TenantRef
from portal.tenancy.data import TENANT_TABLES, Order, TenantUser
from portal.tenancy.placement import tenant_session, tenant_transaction
from tests.conftest import SECOND_SERVER_ENV, FreshContextClient, app_config, clear_redis
from tests.factories import PASSWORD, sign_in_staff, unique_slug
from tests.lifecycle.conftest import catalog
from tests.servers import redis_client_of


@pytest.fixture(scope="session")
def moving_app(app, servers, second_server):
    """A second app on the test database (`app` has migrated it), committing for real."""
    live = create_app(app_config(servers, PORTAL_REDIS_PREFIX=f"{servers.redis_prefix}moves",
                                 MOVE_KEEP_HOURS=1, FENCE_LOCK_TIMEOUT_MS=2000, FENCE_ATTEMPTS=5))
    live.test_client_class = FreshContextClient
    with live.app_context():
        for name, env in (("move-local", ""), ("move-second", SECOND_SERVER_ENV)):
            if placements.by_name(name) is None:
                placements.register(name, env, 1000, actor=("system", None, "test"))
        db.session.remove()
    yield live
    with live.app_context():  # (other tests count and choose placements)
        db.session.execute(delete(Placement).where(Placement.name.in_(("move-local", "move-second"))))
        db.session.commit()
        db.engine.dispose()


def fence_objects(app):
    """Every fence object on both servers (schema portal_fence's relations and functions)."""
    found = set()
    for url in (app.config["DATABASE_URL"], os.environ[SECOND_SERVER_ENV]):
        with owner_connection(url, autocommit=True) as conn:
            databases = [None] + list(conn.execute(text("select datname from pg_database where datname like :p"),
                                                   {"p": app.config["PORTAL_NAME_PREFIX"].replace("_", "\\_") + "%"})
                                      .scalars())
        for database in databases:
            with owner_connection(url, database=database, autocommit=True) as conn:
                found |= {(url, database, r) for r in conn.execute(text(
                    "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                    "where n.nspname = :s union all select p.proname from pg_proc p join pg_namespace n "
                    "on n.oid = p.pronamespace where n.nspname = :s union all select tgname from pg_trigger "
                    "where tgname like 'portal\\_fence\\_%'"), {"s": SCHEMA}).scalars()}
    return found


def catalogs(app):
    """Roles, databases and bridge schemas of this run on both servers, and fence objects."""
    prefix = app.config["PORTAL_NAME_PREFIX"]
    return (catalog(app.config["DATABASE_URL"], prefix), catalog(os.environ[SECOND_SERVER_ENV], prefix),
            frozenset(fence_objects(app)))


class Made:
    """Tenants a test made; removed after it, wherever they are (every tier, both servers)."""

    def __init__(self, app):
        self.app, self.ids = app, []

    def tenant(self, tier="pool", placement=None, users=3, orders=20, plan="enterprise"):
        slug = unique_slug("mv")
        placement_id = placements.by_name(placement).id if placement else None
        tenant, _ = provisioning.create_tenant(slug, f"Moving {slug}", plan, f"admin@{slug}.example", tier=tier,
                                               placement_id=placement_id)
        self.ids.append(tenant.id)
        ref = TenantRef.of(tenant)
        with tenant_transaction(ref) as session:
            for n in range(users):
                session.add(TenantUser(tenant_id=tenant.id, email=f"user{n}@{slug}.example", role="member",
                                       name=f"User {n}"))
            for n in range(1, orders + 1):
                session.add(Order(tenant_id=tenant.id, number=n, customer=f"Customer {n}", amount_cents=n * 100,
                                  status="open"))
        return tenant

    def remove(self):
        with self.app.app_context():
            db.session.rollback()
            for tenant_id in self.ids:
                tenant = db.session.get(Tenant, tenant_id)
                if tenant is None:
                    continue
                moves.drop_old_copies(tenant_id, force=True)
                for move in db.session.execute(select(TenantMove).where(TenantMove.tenant_id == tenant_id)).scalars():
                    if move.under_way:
                        moves.Mover(move).undo("test ended")
                ref = TenantRef.of(tenant)
                if ref.tier == "pool":
                    delete_rows(tenant)
                else:
                    drop_storage(ref.id, ref.tier, ref.placement_env)
                db.session.execute(delete(Job).where(Job.tenant_id == tenant_id))
                db.session.execute(delete(Tenant).where(Tenant.id == tenant_id))
                db.session.commit()
            clear_redis_for(self.app)
            db.session.remove()


def clear_redis_for(app):
    client = redis_client_of(app.config["REDIS_URL"], cluster=app.config["REDIS_CLUSTER"])
    clear_redis(client, app.config["PORTAL_REDIS_PREFIX"])
    client.close()


@pytest.fixture()
def made(moving_app):
    before = catalogs(moving_app)
    made = Made(moving_app)
    ctx = moving_app.app_context()
    ctx.push()
    try:
        yield made
    finally:
        ctx.pop()
        made.remove()
    assert catalogs(moving_app) == before, "a move left something behind"


def staff_client(app, role="operator"):
    """A test client of `app` signed in as a new staff user with `role`."""
    client = app.test_client()
    user, _ = create_staff_user(f"mv-{uuid.uuid4().hex[:8]}@staff.example", role, PASSWORD)
    sign_in_staff(client, user)
    return client


def move(tenant, tier, placement=None, **kwargs):
    """Request a move and run its job here, as a worker would; returns (move, job)."""
    placement_id = placements.by_name(placement).id if placement else None
    row, job = moves.request_move(tenant, tier, placement_id, ("system", None, "test"), **kwargs)
    job = jobqueue.run(job, moves.run)
    db.session.refresh(row)
    return row, job


def contents(tenant):
    """Every table of `tenant` where it is now: {table: sorted rows as text} (no tenant_id)."""
    db.session.refresh(tenant)
    ref = TenantRef.of(tenant)
    result = {}
    with tenant_session(ref) as session:
        for table in TENANT_TABLES:
            columns = [c for c in table.columns if c.name != "tenant_id"]
            rows = session.execute(select(*columns)).all()
            result[table.name] = sorted(repr(tuple(row)) for row in rows)
    return result


def counts(tenant):
    ref = TenantRef.of(tenant)
    with tenant_session(ref) as session:
        return {t.name: session.execute(select(func.count()).select_from(t)).scalar_one() for t in TENANT_TABLES}


__all__ = ["PASSWORD", "uuid", "Placement"]
