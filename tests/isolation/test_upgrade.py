"""The tenant upgrade runner: one failing tenant leaves the others upgraded and itself at
its old version; runs resume; two runs at once refuse; unknown slugs refuse."""
import shutil
import textwrap

import pytest
from sqlalchemy import select, text

from portal.dbsetup import ROOT, owner_engine, tenant_head
from portal.extensions import db
from portal.lifecycle import upgrade
from portal.lifecycle.upgrade import LOCK_KEY
from portal.models import Tenant, UpgradeRun
from portal.services.errors import Refused
from portal.tenancy.names import schema_name

HEAD = tenant_head()  # the test's revision goes on top of the real history
T0002 = '''
"""Add orders.note (a test migration that fails for one schema).

Revision ID: tnote
Revises: {head}
"""
import sqlalchemy as sa
from alembic import op

revision = "tnote"
down_revision = "{head}"
branch_labels = None
depends_on = None
FAIL_IN = {fail_in!r}


def upgrade():
    schema = op.get_context().version_table_schema
    op.add_column("orders", sa.Column("note", sa.Text, nullable=True), schema=schema)
    if schema in FAIL_IN:
        raise RuntimeError("injected failure in " + schema)


def downgrade():
    op.drop_column("orders", "note", schema=op.get_context().version_table_schema)
'''


@pytest.fixture()
def history(tmp_path):
    """A copy of the tenant history with a t0002 that fails in the schemas asked for."""

    def make(fail_in=()):
        target = tmp_path / "tenant-history"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(f"{ROOT}/migrations/tenant", target, ignore=shutil.ignore_patterns("__pycache__"))
        (target / "versions" / "9999_note.py").write_text(
            textwrap.dedent(T0002.format(fail_in=list(fail_in), head=HEAD)))
        return str(target)

    return make


def _columns(app, schema):
    engine = owner_engine(app.config["DATABASE_URL"])
    with engine.connect() as conn:
        cols = conn.execute(text(
            "select column_name from information_schema.columns where table_schema = :s and table_name = 'orders'"
        ), {"s": schema}).scalars().all()
        version = conn.execute(text(f'select version_num from "{schema}".alembic_version')).scalar()
    engine.dispose()
    return set(cols), version


def _version(tenant):
    return db.session.execute(select(Tenant.schema_version).where(Tenant.id == tenant.id)).scalar()


def test_failing_tenant_keeps_old_version_others_upgrade_and_rerun_resumes(app, make_tiered, history):
    tenants = [make_tiered("bridge") for _ in range(3)]
    failing = tenants[1]
    location = history(fail_in=[schema_name(failing.id)])
    slugs = [t.slug for t in tenants]
    targets, current, head = upgrade.plan(slugs, script_location=location)
    assert (len(targets), current, head) == (3, 0, "tnote")
    record = upgrade.run(targets, "test", jobs=2, script_location=location)
    assert (record.status, record.done, record.failed) == ("failed", 2, 1)
    failed = [r for r in record.results if not r["ok"]]
    assert failed[0]["target"] == failing.slug and "injected failure" in failed[0]["error"]
    for tenant in tenants:
        columns, version = _columns(app, schema_name(tenant.id))
        if tenant is failing:
            assert version == HEAD and "note" not in columns and _version(tenant) == HEAD
        else:
            assert version == "tnote" and "note" in columns and _version(tenant) == "tnote"
    # The fault is fixed: a second run picks up only the tenant left behind.
    fixed = history(fail_in=[])
    targets, current, _ = upgrade.plan(slugs, script_location=fixed)
    assert [t.label for t in targets] == [failing.slug] and current == 2
    record = upgrade.run(targets, "test", jobs=1, script_location=fixed)
    assert (record.status, record.done) == ("done", 1)
    assert _columns(app, schema_name(failing.id))[1] == "tnote"
    targets, current, _ = upgrade.plan(slugs, script_location=fixed)
    assert targets == [] and current == 3


def test_silo_tenants_are_upgraded_on_their_placement(app, make_tiered, history):
    silo = make_tiered("silo", "second")
    location = history()
    targets, _, _ = upgrade.plan([silo.slug], script_location=location)
    record = upgrade.run(targets, "test", script_location=location)
    assert record.status == "done" and _version(silo) == "tnote"


def test_second_run_refuses_naming_the_first(app, conn, make_tiered):
    tenant = make_tiered("bridge")
    first = UpgradeRun(started_by="ops@example.com", status="running", target="head", total=5)
    db.session.add(first)
    db.session.commit()
    holder = owner_engine(app.config["DATABASE_URL"])
    with holder.connect() as held:
        assert held.execute(text("select pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()
        with pytest.raises(Refused) as refused:
            upgrade.run([], "second", jobs=1)
        assert "already running" in refused.value.message
        assert "ops@example.com" in refused.value.message and str(first.id) in refused.value.message
        held.execute(text("select pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
    holder.dispose()
    # With the lock free again, the stale `running` row is marked interrupted.
    upgrade.run([], "third")
    db.session.refresh(first)
    assert first.status == "interrupted"
    assert tenant  # the bridge tenant stayed as it was


def test_unknown_slug_and_nothing_named_are_refused(app, conn, factory):
    tenant = factory.tenant()
    with pytest.raises(Refused, match="No tenant with slug nope"):
        upgrade.plan([tenant.slug, "nope"])
    with pytest.raises(Refused, match="Name tenants by slug"):
        upgrade.plan([])


def test_cli_upgrade_reports_and_exits(app, conn, make_tiered):
    runner = app.test_cli_runner()
    tenant = make_tiered("bridge")
    result = runner.invoke(args=["tenants", "upgrade", tenant.slug])
    assert result.exit_code == 0 and "0 target(s) to upgrade, 1 tenant(s) already current" in result.output
    assert runner.invoke(args=["tenants", "upgrade", "no-such-slug"]).exit_code != 0
    both = runner.invoke(args=["tenants", "upgrade", "--all", tenant.slug])
    assert both.exit_code != 0 and "not both" in both.output
