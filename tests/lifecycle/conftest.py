"""Fixtures for the tenant lifecycle tests (issue 4): provisioning faults, a killed
worker, export and import, deprovisioning and purging.

Bridge schemas, silo databases and their roles are real and committed: every test drops
the storage it made (`make_tiered` does for its tenants, `imported` for tenants made by
an import). Exports are written to a temporary folder per test, not the instance folder.
"""
import pytest
from sqlalchemy import func, select, text

from portal.dbsetup import owner_engine
from portal.extensions import db
from portal.lifecycle.storage import drop_storage
from portal.models import Job, Tenant
from portal.tenancy.context import TenantRef
from portal.tenancy.data import Order, TenantSetting, TenantUser
from portal.tenancy.placement import tenant_session
from tests.isolation.conftest import TIER_SPECS, make_tiered, placed  # noqa: F401  (fixtures)

__all__ = ["TIER_SPECS", "make_tiered", "placed"]


@pytest.fixture(autouse=True)
def export_folder(app, tmp_path):
    """PORTAL_EXPORT_DIR is a temporary folder for the test (restored after)."""
    previous = app.config.get("PORTAL_EXPORT_DIR")
    folder = tmp_path / "exports"
    app.config["PORTAL_EXPORT_DIR"] = str(folder)
    try:
        yield folder
    finally:
        app.config["PORTAL_EXPORT_DIR"] = previous


def catalog(url, prefix, engine=None):
    """Roles and databases with the run's prefix, and bridge schemas, on one server."""
    own = engine is None
    engine = owner_engine(url) if own else engine
    like = {"p": prefix.replace("_", "\\_") + "%"}
    try:
        with engine.connect() as conn:
            return (
                frozenset(conn.execute(text("select rolname from pg_roles where rolname like :p"), like).scalars()),
                frozenset(conn.execute(text("select datname from pg_database where datname like :p"),
                                       like).scalars()),
                frozenset(conn.execute(text("select nspname from pg_namespace where nspname like 't\\_%'"))
                          .scalars()),
            )
    finally:
        if own:
            engine.dispose()


@pytest.fixture(scope="session")
def catalog_engines(app, second_server):
    """One owner engine per server for the snapshots (a connection each, kept)."""
    engines = {url: owner_engine(url) for url in (app.config["DATABASE_URL"], second_server)}
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture()
def catalogs(app, catalog_engines):
    """snapshot() of both servers' catalogs (the registry's, and the second one)."""
    prefix = app.config["PORTAL_NAME_PREFIX"]

    def snapshot():
        return [catalog(url, prefix, engine) for url, engine in catalog_engines.items()]

    return snapshot


def tenant_count():
    return db.session.execute(select(func.count()).select_from(Tenant)).scalar_one()


def job_count():
    return db.session.execute(select(func.count()).select_from(Job)).scalar_one()


def row_counts(tenant):
    """(users, orders, settings) of `tenant`, through the app's own tenant session (in
    the pool, RLS keeps the count to the tenant; the test's rows are only visible there)."""
    ref = tenant if isinstance(tenant, TenantRef) else TenantRef.of(tenant)
    with tenant_session(ref) as session:
        return tuple(session.execute(select(func.count()).select_from(model)).scalar_one()
                     for model in (TenantUser, Order, TenantSetting))


def tenant_redis_keys(redis_client, prefix, tenant_id, slug):
    """Every Redis key of the tenant: its hash-tagged keys, and lookup-cache entries that
    name it (by key, or in the cached value)."""
    found = list(redis_client.scan_iter(match=f"{prefix}:t:{{{tenant_id}}}:*", count=500))
    for key in redis_client.scan_iter(match=f"{prefix}:tenant:*", count=500):
        value = redis_client.get(key) or ""
        if slug in key or str(tenant_id) in key or str(tenant_id) in value:
            found.append(key)
    return sorted(found)


@pytest.fixture()
def imported(app):
    """Record tenants made by an import (or any other way besides make_tiered); their
    storage is dropped after the test."""
    made = []

    def keep(tenant):
        made.append(TenantRef.of(tenant) if not isinstance(tenant, TenantRef) else tenant)
        return tenant

    yield keep
    with app.app_context():
        for ref in made:
            drop_storage(ref.id, ref.tier, ref.placement_env)
