"""Tenants in every tier, for the isolation attack suite.

Registry rows live in the test's rolled-back transaction, like every other test's; the
bridge schemas and silo databases (and their roles) are real and committed, so each
fixture drops the storage it made after the test.
"""
import pytest

from portal.lifecycle import placements
from portal.lifecycle.storage import drop_storage
from tests.conftest import SECOND_SERVER_ENV


@pytest.fixture()
def placed(conn, second_server):
    """Two placements: the registry's own server, and a second server."""
    return {
        "local": placements.register("local", "", 100, actor=("system", None, "test")),
        "second": placements.register("second", SECOND_SERVER_ENV, 100, actor=("system", None, "test")),
    }


@pytest.fixture()
def make_tiered(factory, placed):
    """make_tiered(tier, placement_name=None, **kwargs) -> TenantRef; storage dropped after."""
    made = []

    def make(tier, placement=None, **kwargs):
        placement_id = placed[placement].id if placement else None
        ref = factory.tenant(tier=tier, placement_id=placement_id, **kwargs)
        made.append(ref)
        return ref

    yield make
    for ref in made:
        drop_storage(ref.id, ref.tier, ref.placement_env)


TIER_SPECS = {
    "pool": ("pool", None),
    "bridge": ("bridge", None),
    "silo-local": ("silo", "local"),
    "silo-second": ("silo", "second"),
}
PAIRS = [
    ("pool", "bridge"), ("bridge", "pool"), ("bridge", "bridge"), ("pool", "silo-second"),
    ("silo-second", "pool"), ("bridge", "silo-local"), ("silo-local", "silo-second"), ("pool", "pool"),
]


@pytest.fixture()
def every_tier(make_tiered):
    """One tenant per tier spec, by spec name."""
    return {name: make_tiered(tier, placement) for name, (tier, placement) in TIER_SPECS.items()}
