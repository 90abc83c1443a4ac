"""The orders pages: new, edit and delete with the API's rules (each refusal beside its
field, nothing stored), for the roles that hold each permission."""
import pytest
from sqlalchemy import func, select

from portal.tenancy.data import Order
from portal.tenancy.placement import tenant_session
from tests.factories import csrf_token, sign_in_tenant


def _orders(tenant):
    with tenant_session(tenant) as session:
        return session.execute(select(Order).order_by(Order.number)).scalars().all()


def _post(client, page, url, data):
    return client.post(url, data={**data, "csrf_token": csrf_token(client.get(page).get_data(as_text=True))})


def test_an_admin_adds_edits_and_deletes_an_order(client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    base = f"/t/{tenant.slug}"
    added = _post(client, f"{base}/orders/new", f"{base}/orders/new", {"customer": "Ada Shop", "amount": "12.50"})
    assert added.status_code == 302
    [order] = _orders(tenant)
    assert (order.number, order.customer, order.amount_cents, order.status) == (1, "Ada Shop", 1250, "open")
    page = client.get(added.headers["Location"]).get_data(as_text=True)
    assert "Order 1 added." in page and "Ada Shop" in page
    edited = _post(client, f"{base}/orders/{order.id}/edit", f"{base}/orders/{order.id}/edit",
                   {"customer": "Ada Shop Ltd", "amount": "13", "status": "paid"})
    assert edited.status_code == 302
    [order] = _orders(tenant)
    assert (order.customer, order.amount_cents, order.status) == ("Ada Shop Ltd", 1300, "paid")
    deleted = _post(client, f"{base}/orders/{order.id}", f"{base}/orders/{order.id}/delete", {})
    assert deleted.status_code == 302 and _orders(tenant) == []


@pytest.mark.parametrize("data, field, message", [
    ({"customer": "", "amount": "1"}, "customer", "This field is required"),
    ({"customer": "x" * 121, "amount": "1"}, "customer", "Field cannot be longer than 120 characters"),
    ({"customer": "X", "amount": "abc"}, "amount", "Not a valid decimal value"),
    ({"customer": "X", "amount": "-1"}, "amount", "Number must be between 0 and 10000000"),
    ({"customer": "X", "amount": ""}, "amount", "Enter an amount"),
    ({"customer": "a\x01b", "amount": "1"}, "customer", "printable"),
])
def test_bad_orders_are_refused_beside_the_field(client, factory, data, field, message):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    refused = _post(client, f"/t/{tenant.slug}/orders/new", f"/t/{tenant.slug}/orders/new", data)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 400 and message in body and f'id="{field}-error"' in body
    assert _orders(tenant) == []


def test_each_role_does_what_its_permissions_allow(client, factory):
    tenant = factory.tenant()
    order = factory.order(tenant, number=5)
    base = f"/t/{tenant.slug}"
    sign_in_tenant(client, tenant, factory.user(tenant, role="member"))  # create and update, not delete
    assert client.get(f"{base}/orders/new").status_code == 200
    assert "Delete" not in client.get(f"{base}/orders/{order.id}").get_data(as_text=True)
    refused = client.post(f"{base}/orders/{order.id}/delete",
                          data={"csrf_token": csrf_token(client.get(f"{base}/orders").get_data(as_text=True))})
    assert refused.status_code == 403
    viewer = factory.user(tenant, role="viewer")
    other = client.application.test_client()
    sign_in_tenant(other, tenant, viewer)
    assert other.get(f"{base}/orders/new").status_code == 403
    assert "New order" not in other.get(f"{base}/orders").get_data(as_text=True)
    with tenant_session(tenant) as session:
        assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 1
