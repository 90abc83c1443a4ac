"""Fixtures of the custom-domain tests: a real DNS server the app asks, a signed-in admin."""
import pytest

from tests.dns_server import dns_answering
from tests.factories import sign_in_tenant


@pytest.fixture()
def fake_dns(app):
    """The fake server, and the app asking it (DNS_NAMESERVERS restored afterwards)."""
    with dns_answering(app) as server:
        yield server


@pytest.fixture()
def admin_of(client, factory):
    """A signed-in admin of a tenant whose plan has custom domains."""
    tenant = factory.tenant(plan="professional")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    return tenant
