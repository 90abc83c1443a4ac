"""The orders pages: new, edit and delete with the API's rules (each refusal beside its
field, nothing stored), for the roles that hold each permission."""
import pytest
from sqlalchemy import func, select

from portal.plans import services as plan_services
from portal.tenancy.data import Order
from portal.tenancy.placement import tenant_session
from portal.tenants.services import get_tenant
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


def test_the_list_offers_new_and_edit_only_to_who_may(client, factory):
    tenant = factory.tenant()
    order = factory.order(tenant, number=3)
    base = f"/t/{tenant.slug}"
    sign_in_tenant(client, tenant, factory.user(tenant, role="member"))  # orders.create and orders.update
    listing = client.get(f"{base}/orders").get_data(as_text=True)
    assert f'href="{base}/orders/new"' in listing and f'href="{base}/orders/{order.id}/edit"' in listing
    viewer = client.application.test_client()
    sign_in_tenant(viewer, tenant, factory.user(tenant, role="viewer"))
    listing = viewer.get(f"{base}/orders").get_data(as_text=True)
    assert "/orders/new" not in listing and "/edit" not in listing and ">Edit<" not in listing
    assert viewer.get(f"{base}/orders/{order.id}/edit").status_code == 403


@pytest.mark.parametrize("data, field, message", [
    ({"customer": " ", "amount": "1", "status": "paid"}, "customer", "This field is required"),
    ({"customer": "Kept Name", "amount": "12,50", "status": "paid"}, "amount", "Not a valid decimal value"),
    ({"customer": "Kept Name", "amount": "10000001", "status": "paid"}, "amount", "Number must be between"),
    ({"customer": "Kept Name", "amount": "5", "status": "lost"}, "status", "Not a valid choice"),
    ({"customer": "Kept\u200bName", "amount": "5", "status": "paid"}, "customer", "printable"),
])
def test_a_member_s_bad_edit_is_refused_beside_the_field_input_kept(client, factory, data, field, message):
    tenant = factory.tenant()
    order = factory.order(tenant, customer="Before", amount_cents=100)
    sign_in_tenant(client, tenant, factory.user(tenant, role="member"))
    url = f"/t/{tenant.slug}/orders/{order.id}/edit"
    refused = _post(client, url, url, data)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 400 and message in body and f'id="{field}-error"' in body
    assert 'aria-invalid="true"' in body
    kept = data["customer"] if field != "customer" else data["amount"]
    assert f'value="{kept}"' in body  # what was typed is still there
    [stored] = _orders(tenant)
    assert (stored.customer, stored.amount_cents, stored.status) == ("Before", 100, "open")


def test_another_tenant_s_order_is_not_found_by_id(client, factory):
    tenant_a, tenant_b = factory.tenant(), factory.tenant()
    order = factory.order(tenant_a, customer="Only A's")
    sign_in_tenant(client, tenant_b, factory.admin(tenant_b))
    base = f"/t/{tenant_b.slug}"
    for path in (f"/orders/{order.id}", f"/orders/{order.id}/edit"):
        answer = client.get(f"{base}{path}")
        assert answer.status_code == 404 and "Only A's" not in answer.get_data(as_text=True), path
    token = csrf_token(client.get(f"{base}/orders/new").get_data(as_text=True))
    changed = client.post(f"{base}/orders/{order.id}/edit",
                          data={"customer": "Taken", "amount": "1", "status": "paid", "csrf_token": token})
    assert changed.status_code == 404
    [stored] = _orders(tenant_a)
    assert (stored.customer, stored.status) == ("Only A's", "open")
    assert _orders(tenant_b) == []


def test_order_pages_count_against_the_quotas_as_the_api_does(client, factory):
    """Over the storage quota a new order is refused on the page as on the API (one
    pipeline counts both), and nothing is stored."""
    tenant = factory.tenant(plan="basic")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    page = f"/t/{tenant.slug}/orders/new"
    token = csrf_token(client.get(page).get_data(as_text=True))
    plan_services.set_override(get_tenant(tenant.id), "limit:storage_mb", "0", None, "test",
                               ("staff", None, "orders-test@staff.example"))
    refused = client.post(page, data={"customer": "Over", "amount": "1", "csrf_token": token})
    assert refused.status_code == 403 and "Storage quota reached" in refused.get_data(as_text=True)
    assert _orders(tenant) == []


@pytest.mark.parametrize("host", [None, "subdomain"])
def test_the_list_s_row_links_are_the_order_pages_by_path_and_by_subdomain(client, factory, host):
    """The list joins each row's links to its own URL (one url_for, not two a row): they
    must be what url_for builds for orders.detail and orders.edit, and answer."""
    tenant = factory.tenant()
    order = factory.order(tenant, number=4)
    headers = {"Host": f"{tenant.slug}.portal.test"} if host else {}
    base = "" if host else f"/t/{tenant.slug}"
    sign_in_tenant(client, tenant, factory.user(tenant, role="member"), prefix=base, headers=headers)
    listing = client.get(f"{base}/orders", headers=headers).get_data(as_text=True)
    for url in (f"{base}/orders/{order.id}", f"{base}/orders/{order.id}/edit"):
        assert f'href="{url}"' in listing
        page = client.get(url, headers=headers)
        assert page.status_code == 200 and f"Order {order.number}" in page.get_data(as_text=True)
