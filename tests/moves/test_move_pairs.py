"""Every pair of places: pool ↔ bridge ↔ silo in either direction, and silo on one server
to silo on another; the same rows, the same checksums, the old copy kept then dropped."""
import pytest

from portal.extensions import db
from portal.lifecycle import moves
from portal.lifecycle.fences import Fence
from portal.tenancy.context import TenantRef
from tests.moves.conftest import contents, move

PLACES = {"pool": ("pool", None), "bridge": ("bridge", None), "silo-local": ("silo", "move-local"),
          "silo-second": ("silo", "move-second")}
PAIRS = [("pool", "bridge"), ("bridge", "pool"), ("pool", "silo-second"), ("silo-second", "pool"),
         ("bridge", "silo-local"), ("silo-local", "bridge"), ("bridge", "silo-second"), ("silo-local", "silo-second"),
         ("silo-second", "silo-local")]


@pytest.mark.parametrize("source, target", PAIRS)
def test_every_pair_moves_the_same_rows(moving_app, made, source, target):
    tenant = made.tenant(*PLACES[source])
    before = contents(tenant)
    row, job = move(tenant, *PLACES[target])
    assert job.state == "succeeded", (job.error, job.steps)
    assert row.state == "switched" and row.old_copy_kept
    db.session.refresh(tenant)
    assert (tenant.tier, tenant.placement.name if tenant.placement else None) == PLACES[target]
    assert contents(tenant) == before
    figures = row.figures
    assert figures["copied_rows"] == sum(len(rows) for rows in before.values())
    assert figures["freeze_ms"] >= 0 and figures["checksums"]["orders"]["rows"] == 20
    # The old copy is kept, behind its fence: a write there is refused.
    old = TenantRef.of(tenant).placed(row.from_tier, row.from_placement.url_env or "" if row.from_placement else None)
    fence = Fence(old, moving_app.config["DATABASE_URL"])
    assert fence.state() == ("moved", True)
    fence.close()
    moves.drop_old_copy(row)
    assert not row.old_copy_kept


def test_the_cli_moves_prints_its_phases_and_figures_and_drains_a_server(moving_app, made):
    runner = moving_app.test_cli_runner()
    tenant = made.tenant("pool")
    dry = runner.invoke(args=["tenants", "move", tenant.slug, "--tier", "silo", "--placement", "move-second",
                              "--dry-run"])
    assert dry.exit_code == 0 and "orders" in dry.output and "rows" in dry.output
    assert moves.under_way(tenant.id) is None and moves.moves_of(tenant.id) == []
    moved = runner.invoke(args=["tenants", "move", tenant.slug, "--tier", "silo", "--placement", "move-second",
                                "--max-freeze-ms", "1000"])
    assert moved.exit_code == 0, moved.output
    for line in ("prepare: done", "copy: done", "catch-up: done", "freeze: done", "validate: done", "switch: done",
                 "writes frozen", "checksum"):
        assert line in moved.output, line
    refused = runner.invoke(args=["tenants", "move", tenant.slug, "--tier", "silo", "--placement", "move-second"])
    assert refused.exit_code != 0 and "is already there" in refused.output
    second = made.tenant("silo", "move-second")
    drained = runner.invoke(args=["placements", "drain", "move-second", "--to", "move-local"])
    assert drained.exit_code == 0, drained.output
    assert "move-second is drained: 2 tenant(s)" in drained.output
    for t in (tenant, second):
        db.session.refresh(t)
        assert t.placement.name == "move-local"
    again = runner.invoke(args=["placements", "drain", "move-second", "--to", "move-local"])
    assert again.exit_code != 0 and "No tenant is on move-second" in again.output  # nothing left: resumable
