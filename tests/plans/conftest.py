"""The plans tests share the quotas tests' fixtures (an override, a staff client)."""
from tests.quotas.conftest import override, staff_actor, staff_client  # noqa: F401
