"""The tenant's pages, users and orders work the same in every tier."""
import pytest
from sqlalchemy import text

from portal.dbsetup import owner_engine
from portal.tenancy.names import database_name, role_name, schema_name
from tests.factories import sign_in_tenant
from tests.isolation.conftest import TIER_SPECS


@pytest.mark.parametrize("spec", TIER_SPECS)
def test_pages_users_and_orders_in_every_tier(client, factory, make_tiered, spec):
    tier, placement = TIER_SPECS[spec]
    tenant = make_tiered(tier, placement)
    admin = factory.admin(tenant)
    order = factory.order(tenant, number=31, customer="Tiered Customer")
    sign_in_tenant(client, tenant, admin)
    home = client.get(f"/t/{tenant.slug}/").get_data(as_text=True)
    assert "Users: 2 of 10" in home and "Orders: 1" in home
    assert "Tiered Customer" in client.get(f"/t/{tenant.slug}/orders").get_data(as_text=True)
    assert client.get(f"/t/{tenant.slug}/orders/{order.id}").status_code == 200
    assert admin.email in client.get(f"/t/{tenant.slug}/users").get_data(as_text=True)


def test_storage_is_where_the_tier_says(app, make_tiered, second_server):
    bridge = make_tiered("bridge")
    silo = make_tiered("silo", "second")
    registry = owner_engine(app.config["DATABASE_URL"])
    with registry.connect() as conn:
        assert conn.execute(text("select 1 from pg_namespace where nspname = :s"),
                            {"s": schema_name(bridge.id)}).scalar() == 1
        member = conn.execute(text(
            "select r.rolinherit from pg_roles r where r.rolname = :r"), {"r": role_name(bridge.id)}).scalar()
        assert member is False
    registry.dispose()
    second = owner_engine(second_server)
    with second.connect() as conn:
        assert conn.execute(text("select 1 from pg_database where datname = :d"),
                            {"d": database_name(silo.id)}).scalar() == 1
    second.dispose()
