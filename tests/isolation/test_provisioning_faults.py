"""Bad input and faults while provisioning: a clear message, and nothing half-made (the
catalogs are checked: no orphan schema, database, role or registry row)."""
import shutil

import pytest
from sqlalchemy import func, select, text

from portal.dbsetup import ROOT, owner_engine, tenant_head
from portal.extensions import db
from portal.lifecycle import placements, provisioning
from portal.models import Tenant
from portal.services.errors import Refused
from tests.conftest import SECOND_SERVER_ENV
from tests.factories import unique_slug


def _catalog(url, prefix):
    """Roles and databases with the run's prefix, and bridge schemas, on one server."""
    engine = owner_engine(url)
    like = {"p": prefix.replace("_", "\\_") + "%"}
    with engine.connect() as conn:
        found = (
            frozenset(conn.execute(text("select rolname from pg_roles where rolname like :p"), like).scalars()),
            frozenset(conn.execute(text("select datname from pg_database where datname like :p"), like).scalars()),
            frozenset(conn.execute(text("select nspname from pg_namespace where nspname like 't\\_%'")).scalars()),
        )
    engine.dispose()
    return found


@pytest.fixture()
def catalogs(app, second_server):
    """Snapshot both servers' catalogs; the test asserts they are unchanged."""
    prefix = app.config["PORTAL_NAME_PREFIX"]
    urls = [app.config["DATABASE_URL"], second_server]

    def snapshot():
        return [_catalog(url, prefix) for url in urls]

    return snapshot


def _tenants():
    return db.session.execute(select(func.count()).select_from(Tenant)).scalar_one()


def _create(tier, placement_id=None, **kwargs):
    slug = unique_slug()
    return provisioning.create_tenant(slug, "Faulty", "enterprise", f"a@{slug}.example", tier=tier,
                                      placement_id=placement_id, **kwargs)


def test_unreachable_placement_is_refused_and_leaves_nothing(app, placed, catalogs, monkeypatch):
    before, count = catalogs(), _tenants()
    monkeypatch.setenv(SECOND_SERVER_ENV, "postgresql://postgres@127.0.0.1:1/postgres")
    with pytest.raises(Refused, match="Placement second: The server is unreachable") as refused:
        _create("silo", placed["second"].id)
    assert refused.value.field == "placement"
    monkeypatch.undo()
    assert catalogs() == before and _tenants() == count


def test_full_placement_is_refused(app, conn, second_server, catalogs):
    small = placements.register("tiny", SECOND_SERVER_ENV, 1, actor=("system", None, "test"))
    tenant, _ = _create("silo", small.id)
    try:
        before, count = catalogs(), _tenants()
        with pytest.raises(Refused, match="Placement tiny is full \\(1 tenants\\)"):
            _create("silo", small.id)
        assert catalogs() == before and _tenants() == count
    finally:
        from portal.lifecycle.storage import drop_storage

        drop_storage(tenant.id, "silo", SECOND_SERVER_ENV)


@pytest.mark.parametrize("value, message", [
    ("not a url at all", "does not parse"),
    ("mysql://root@127.0.0.1/x", "not a PostgreSQL URL"),
    ("postgresql://postgres@127.0.0.1:1/postgres", "unreachable"),
])
def test_bad_placement_urls_are_refused(app, conn, monkeypatch, value, message):
    monkeypatch.setenv("PORTAL_TEST_BAD_PLACEMENT", value)
    with pytest.raises(Refused, match=message):
        placements.register("bad", "PORTAL_TEST_BAD_PLACEMENT", 5)
    for env, msg in [("NOT_SET_ANYWHERE_X", "is not set"), ("lower-case", "upper case")]:
        with pytest.raises(Refused, match=msg):
            placements.register("bad", env, 5)
    with pytest.raises(Refused, match="Capacity"):
        placements.register("bad", "", 0)


def test_silo_without_any_placement_is_refused(app, conn):
    with pytest.raises(Refused, match="Register a placement first"):
        _create("silo")


def _failing_history(tmp_path):
    target = tmp_path / "history"
    shutil.copytree(f"{ROOT}/migrations/tenant", target, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "versions" / "9999_boom.py").write_text(
        f'revision = "tboom"\ndown_revision = "{tenant_head()}"\nbranch_labels = None\ndepends_on = None\n\n'
        "def upgrade():\n    raise RuntimeError('injected migration failure')\n\n\ndef downgrade():\n    pass\n"
    )
    return str(target)


def _only_the_failed_tenant(count, step):
    """Besides the tenant left `failed` (with its step), nothing is new; discarding it
    removes it."""
    assert _tenants() == count + 1
    failed = db.session.execute(select(Tenant).where(Tenant.status == "failed")).scalar_one()
    assert failed.failed_step == step
    provisioning.discard(failed)
    assert _tenants() == count


@pytest.mark.parametrize("tier, placement", [("bridge", None), ("silo", "local"), ("silo", "second")])
def test_failing_migration_leaves_nothing(app, placed, catalogs, tmp_path, tier, placement):
    before, count = catalogs(), _tenants()
    placement_id = placed[placement].id if placement else None
    with pytest.raises(Refused, match="injected migration failure"):
        _create(tier, placement_id, script_location=_failing_history(tmp_path))
    assert catalogs() == before
    _only_the_failed_tenant(count, "storage")
    assert catalogs() == before


@pytest.mark.parametrize("tier, placement", [("bridge", None), ("silo", "second"), ("pool", None)])
def test_failure_after_storage_drops_it_again(app, placed, catalogs, monkeypatch, tier, placement):
    before, count = catalogs(), _tenants()

    def broken(user):
        raise RuntimeError("injected failure writing the first admin")

    monkeypatch.setattr(provisioning.password_links, "open_link", broken)
    placement_id = placed[placement].id if placement else None
    with pytest.raises(Refused, match="first admin and invitation.*injected failure"):
        _create(tier, placement_id)
    assert catalogs() == before
    _only_the_failed_tenant(count, "first admin and invitation")
