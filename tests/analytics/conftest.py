"""Tenants in every tier (the isolation suite's fixtures)."""
from tests.isolation.conftest import make_tiered, placed  # noqa: F401 - fixtures
