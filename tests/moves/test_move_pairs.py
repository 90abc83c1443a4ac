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
