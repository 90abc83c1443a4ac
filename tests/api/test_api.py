"""The API's endpoints: identity, users, orders, events; and a token of tenant A used on B's
path, host or X-Tenant-ID learns nothing of B. (The tokens themselves: tests/tokens/.)"""

import pytest
from sqlalchemy import func, select

from portal.tenancy.data import Event
from portal.tenancy.placement import tenant_session
from tests.conftest import BASE_DOMAIN
from tests.factories import auth

API_EVENTS = Event.name.not_like("portal.%")  # the portal records its own too (a token made, …)


def test_token_alone_names_its_tenant(client, a_and_b):
    a, _, token_a, _, _ = a_and_b
    me = client.get("/api/v1/me", headers=auth(token_a))
    assert me.status_code == 200 and me.json["tenant"] == a.slug and me.json["token"]["name"] == "ci"
    assert client.get(f"/t/{a.slug}/api/v1/me", headers=auth(token_a)).status_code == 200
    assert client.get("/api/v1/me", headers=auth(token_a), base_url=f"http://{a.slug}.{BASE_DOMAIN}").status_code == 200


def test_orders_crud_and_users(client, a_and_b):
    a, _, token, _, _ = a_and_b
    created = client.post("/api/v1/orders", json={"customer": "API Co", "amount_cents": 1200}, headers=auth(token))
    assert created.status_code == 201
    order_id = created.json["order"]["id"]
    assert client.get(f"/api/v1/orders/{order_id}", headers=auth(token)).json["order"]["customer"] == "API Co"
    changed = client.patch(f"/api/v1/orders/{order_id}", json={"status": "paid"}, headers=auth(token))
    assert changed.status_code == 200 and changed.json["order"]["status"] == "paid"
    assert [o["id"] for o in client.get("/api/v1/orders", headers=auth(token)).json["orders"]] == [order_id]
    assert client.delete(f"/api/v1/orders/{order_id}", headers=auth(token)).status_code == 204
    assert client.get(f"/api/v1/orders/{order_id}", headers=auth(token)).status_code == 404
    users = client.get("/api/v1/users", headers=auth(token)).json["users"]
    assert {u["email"] for u in users} >= {f"admin@{a.slug}.example"}


def test_events_are_ingested_in_batches(client, a_and_b):
    a, _, token, _, _ = a_and_b
    batch = {"events": [{"name": "signup", "properties": {"plan": "pro"}},
                        {"name": "click", "occurred_at": "2026-11-01T10:00:00+00:00"}]}
    response = client.post("/api/v1/events", json=batch, headers=auth(token))
    assert response.status_code == 202 and response.json == {"accepted": 2}
    with tenant_session(a) as session:
        assert session.execute(select(func.count()).select_from(Event).where(API_EVENTS)).scalar() == 2


@pytest.mark.parametrize("body, message", [
    ({"events": []}, "a list of 1 to 1000"),
    ({"events": [{"name": ""}]}, "events[0].name"),
    ({"events": [{"name": "x", "occurred_at": "yesterday"}]}, "events[0].occurred_at"),
    ({"events": [{"name": "x"}, "not an object"]}, "events[1]"),
])
def test_bad_event_batches_are_refused_whole(client, a_and_b, body, message):
    a, _, token, _, _ = a_and_b
    response = client.post("/api/v1/events", json=body, headers=auth(token))
    assert response.status_code == 400 and message in response.json["error"]["message"]
    with tenant_session(a) as session:
        assert session.execute(select(func.count()).select_from(Event).where(API_EVENTS)).scalar() == 0


@pytest.mark.parametrize("body, message", [
    ({"customer": "", "amount_cents": 1}, "customer"),
    ({"customer": "X", "amount_cents": -1}, "amount_cents"),
    ({"customer": "X", "amount_cents": 1, "tenant_id": "x"}, "Unknown fields"),
    ("not json", "JSON object"),
])
def test_bad_orders_are_refused(client, a_and_b, body, message):
    _, _, token, _, _ = a_and_b
    kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
    response = client.post("/api/v1/orders", headers=auth(token), **kwargs)
    assert response.status_code == 400 and message in response.json["error"]["message"]


API_CALLS = [("get", "/api/v1/me", None), ("get", "/api/v1/users", None), ("get", "/api/v1/orders", None),
             ("get", "/api/v1/orders/{b_order}", None),
             ("post", "/api/v1/orders", {"customer": "x", "amount_cents": 1}),
             ("patch", "/api/v1/orders/{b_order}", {"status": "paid"}), ("delete", "/api/v1/orders/{b_order}", None),
             ("post", "/api/v1/events", {"events": [{"name": "x"}]})]


@pytest.mark.parametrize("method, path, body", API_CALLS)
def test_a_token_of_a_on_b_learns_nothing(client, a_and_b, method, path, body):
    a, b, token_a, token_b, b_order = a_and_b
    path = path.format(b_order=b_order.id)
    secrets = (b.name, "Secret B Customer", f"admin@{b.slug}.example")
    attempts = [
        (f"/t/{b.slug}{path}", {}, 404),                                            # B's path
        (path, {"base_url": f"http://{b.slug}.{BASE_DOMAIN}"}, 404),                # B's host
        (path, {"headers": {"X-Tenant-ID": b.slug}}, 403),                          # B by header only
        (path, {"headers": {"X-Tenant-ID": str(b.id)}}, 403),
    ]
    for url, kwargs, status in attempts:
        headers = {**kwargs.pop("headers", {}), **auth(token_a)}
        response = getattr(client, method)(url, headers=headers, json=body, **kwargs)
        assert response.status_code == status, (url, status, response.status_code)
        text = response.get_data(as_text=True)
        assert response.is_json and not [s for s in secrets if s in text], url
    # A's own token with A's address and B's order id: 404, B's order unchanged.
    response = getattr(client, method)(f"/t/{a.slug}{path}", headers=auth(token_a), json=body)
    assert response.status_code in (200, 201, 202, 204, 404)
    assert "Secret B Customer" not in response.get_data(as_text=True)
    with tenant_session(b) as session:
        assert session.get(type(b_order), (b.id, b_order.id)).status == "open"
