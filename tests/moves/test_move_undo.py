"""A move that does not finish leaves the tenant working where it was, its rows as they
were, and nothing anywhere (catalogs of both servers, fences, registry, Redis): a fault
at every phase in each direction, a cancel, a validation that finds a difference, and a
second move asked for while one runs."""
import pytest
from sqlalchemy import select, text

from portal.dbsetup import owner_connection
from portal.extensions import db
from portal.lifecycle import moves
from portal.models import TenantMove
from portal.services.errors import Refused
from portal.tenancy.context import TenantRef
from portal.tenancy.data import Order
from portal.tenancy.names import database_name, schema_name
from portal.tenancy.placement import tenant_transaction
from tests.moves.conftest import contents, move
from tests.moves.test_move_pairs import PLACES


def _still_home(tenant, source, before):
    db.session.refresh(tenant)
    assert (tenant.tier, tenant.placement.name if tenant.placement else None) == PLACES[source]
    assert contents(tenant) == before
    with tenant_transaction(TenantRef.of(tenant)) as session:  # it takes writes again
        session.add(Order(tenant_id=tenant.id, number=999, customer="after", amount_cents=1, status="open"))


@pytest.mark.parametrize("phase", moves.PHASES)
@pytest.mark.parametrize("source, target", [("pool", "silo-second"), ("silo-second", "bridge"), ("bridge", "pool")])
def test_a_fault_at_any_phase_leaves_the_tenant_where_it_was(moving_app, made, monkeypatch, phase, source, target):
    tenant = made.tenant(*PLACES[source])
    before = contents(tenant)
    monkeypatch.setitem(moving_app.config, "PORTAL_FAULT_STEP", phase)
    row, job = move(tenant, *PLACES[target])
    assert job.state == "failed" and f"fault injected at step “{phase}”" in job.error
    assert row.state == "failed" and not row.under_way
    _still_home(tenant, source, before)  # and the fixture checks both servers' catalogs


def test_cancel_before_the_switch(moving_app, made, monkeypatch):
    tenant = made.tenant("pool")
    before = contents(tenant)
    real_copy = moves.Mover.copy

    def copy_then_cancel(self):
        real_copy(self)
        moves.cancel(self.move, ("system", None, "test"))

    monkeypatch.setattr(moves.Mover, "copy", copy_then_cancel)
    row, job = move(tenant, "silo", "move-second")
    assert (job.state, row.state) == ("cancelled", "cancelled")
    _still_home(tenant, "pool", before)


def test_a_difference_found_by_validation_aborts_the_move(moving_app, made, monkeypatch):
    tenant = made.tenant("pool")
    before = contents(tenant)
    real_validate = moves.Mover.validate

    def alter_then_validate(self):
        with tenant_transaction(self.target) as session:  # a row changed behind the mover's back
            order = session.execute(select(Order).order_by(Order.number).limit(1)).scalar_one()
            order.amount_cents += 1
        return real_validate(self)

    monkeypatch.setattr(moves.Mover, "validate", alter_then_validate)
    row, job = move(tenant, "bridge")
    assert job.state == "failed" and "validation failed: orders: source 20 rows" in job.error
    assert row.state == "failed"
    with owner_connection(moving_app.config["DATABASE_URL"], autocommit=True) as conn:
        assert conn.execute(text("select to_regnamespace(:s)"), {"s": schema_name(tenant.id)}).scalar() is None
    _still_home(tenant, "pool", before)


def test_a_second_move_while_one_runs_is_refused(moving_app, made):
    tenant = made.tenant("pool")
    first, _job = moves.request_move(tenant, "bridge", None, ("system", None, "test"))
    with pytest.raises(Refused, match="already under way"):
        moves.request_move(tenant, "silo", None, ("system", None, "test"))
    assert db.session.execute(select(TenantMove).where(TenantMove.tenant_id == tenant.id)).scalars().all() == [first]
    moves.Mover(first).undo("test")


@pytest.mark.parametrize("tier, placement, message", [
    ("pool", None, "already there"), ("cloud", None, "Choose pool, bridge or silo"),
    ("bridge", "move-local", "Only silo tenants"), ("silo", "nowhere", "Choose one of the registered placements"),
])
def test_bad_targets_are_refused(moving_app, made, tier, placement, message):
    tenant = made.tenant("pool")
    from portal.lifecycle import placements
    placement_id = placements.by_name(placement).id if placement and placements.by_name(placement) else (
        "00000000-0000-0000-0000-000000000000" if placement else None)
    with pytest.raises(Refused, match=message):
        moves.request_move(tenant, tier, placement_id, ("system", None, "test"))
    assert moves.under_way(tenant.id) is None


def test_the_same_server_under_another_placement_name_is_refused(moving_app, made):
    from portal.lifecycle import placements
    tenant = made.tenant("silo", "move-local")
    twin = placements.by_name("move-local-twin") or placements.register("move-local-twin", "", 10,
                                                                        ("system", None, "test"))
    with pytest.raises(Refused, match="on the server the tenant is on already"):
        moves.request_move(tenant, "silo", twin.id, ("system", None, "test"))
    assert database_name(tenant.id)  # unchanged: nothing was made
