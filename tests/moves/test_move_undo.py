"""A move that does not finish leaves the tenant working where it was, its rows as they
were, and nothing anywhere (catalogs of both servers, fences, registry, Redis): a fault
at every phase in each direction, a cancel, a validation that finds a difference, and a
second move asked for while one runs."""
import pytest
from sqlalchemy import select, text, update

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


def _write_after_validation(monkeypatch, tenant):
    """The tenant adds order 777 just after the move validated (a change the freeze replays)."""
    real_validate = moves.Mover.validate

    def validate_then_write(self):
        differences = real_validate(self)
        with tenant_transaction(self.source) as session:
            session.add(Order(tenant_id=tenant.id, number=777, customer="late", amount_cents=5, status="open"))
        return differences

    monkeypatch.setattr(moves.Mover, "validate", validate_then_write)


def test_a_change_after_validation_is_replayed_and_checked_in_the_freeze(moving_app, made, monkeypatch):
    tenant = made.tenant("pool")
    _write_after_validation(monkeypatch, tenant)
    row, job = move(tenant, "silo", "move-second")
    assert job.state == "succeeded", job.error
    assert row.figures["checksums"]["orders"]["rows"] == 21  # the frozen tables' figures count it
    with tenant_transaction(TenantRef.of(tenant)) as session:  # served from the silo now
        assert session.execute(select(Order.customer).where(Order.number == 777)).scalar_one() == "late"


def test_a_difference_in_the_last_changes_aborts_the_move(moving_app, made, monkeypatch):
    tenant = made.tenant("pool")
    before = contents(tenant)
    _write_after_validation(monkeypatch, tenant)
    real_check = moves.Mover.check_last

    def spoil_then_check(self, changes):
        real_replay = self._replay

        def replay_then_spoil(changes, source=None):
            replayed = real_replay(changes, source)
            with tenant_transaction(self.target) as session:  # the target's copy changed behind the mover
                session.execute(update(Order).where(Order.number == 777).values(amount_cents=6))
            return replayed

        self._replay = replay_then_spoil
        return real_check(self, changes)

    monkeypatch.setattr(moves.Mover, "check_last", spoil_then_check)
    row, job = move(tenant, "bridge")
    assert job.state == "failed" and "validation failed: orders: 1 changed rows differ" in job.error
    assert row.state == "failed"
    db.session.refresh(tenant)
    assert tenant.tier == "pool"  # where it was, with its rows and the late order it wrote
    after = contents(tenant)
    late = [r for r in after["orders"] if "'late'" in r]
    after["orders"] = [r for r in after["orders"] if r not in late]
    assert len(late) == 1 and after == before


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


def test_a_switched_move_is_never_undone(moving_app, made):
    """Undo after the switch (a late error, a Ctrl-C) would drop the tenant's live copy: it
    does nothing."""
    tenant = made.tenant("pool")
    row, job = move(tenant, "bridge")
    assert job.state == "succeeded", job.error
    before = contents(tenant)
    moves.Mover(row).undo("a late error")
    db.session.refresh(row)
    assert row.state == "switched" and contents(tenant) == before
