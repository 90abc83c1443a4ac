"""Services: each service function under A's context never returns or changes B's rows."""
import pytest
from sqlalchemy import select

from portal.orders import services as orders
from portal.selfservice import services as selfservice
from portal.services.errors import NotFound
from portal.tenancy.context import tenant_context
from portal.tenancy.data import Order, TenantUser
from portal.tenancy.placement import tenant_session
from portal.users import services as users
from tests.isolation.conftest import PAIRS, TIER_SPECS


def _snapshot(tenant):
    with tenant_session(tenant) as session:
        return (
            sorted((u.email, u.role) for u in session.execute(select(TenantUser)).scalars()),
            sorted((o.number, o.customer, o.status) for o in session.execute(select(Order)).scalars()),
        )


@pytest.mark.parametrize("a_spec, b_spec", PAIRS)
def test_services_under_a_never_touch_b(factory, make_tiered, a_spec, b_spec):
    a = make_tiered(*TIER_SPECS[a_spec])
    b = make_tiered(*TIER_SPECS[b_spec])
    factory.order(a, number=1, customer="A customer")
    b_user = factory.user(b, email=f"only-b@{b.slug}.example")
    b_order = factory.order(b, number=2, customer="B customer")
    b_before = _snapshot(b)
    admin = factory.admin(a)
    with tenant_context(a):
        assert {u.tenant_id for u in users.list_users()} == {a.id}
        assert "only-b@" not in " ".join(u.email for u in users.list_users())
        with pytest.raises(NotFound):  # B's user is not found from A, as no user at all
            users.get_user(b_user.id)
        assert [o.customer for o in orders.latest_orders()] == ["A customer"]
        with pytest.raises(NotFound):
            orders.get_order(b_order.id)
        usage = selfservice.usage_summary()
        assert (usage["users"], usage["orders"]) == (2, 1)
        # A writes: the new user lands in A, and B is unchanged. Same email as B's user: allowed.
        user, _ = users.add_user(b_user.email, "Added", "member", factory.principal(a, admin))
        assert user.tenant_id == a.id
    assert _snapshot(b) == b_before
