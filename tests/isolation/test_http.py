"""HTTP: every tenant route, called as A with B's ids, slug, host and header, for
tenant pairs across tiers: 404 (or a sign-in redirect) and nothing of B in the body."""
import pytest

from portal.domains.services import record_for_tenant as add_domain
from portal.tenants.services import get_tenant
from tests.conftest import BASE_DOMAIN
from tests.factories import sign_in_tenant
from tests.isolation.conftest import PAIRS, TIER_SPECS
from tests.routes import leaks, tenant_get_urls


@pytest.mark.parametrize("a_spec, b_spec", PAIRS)
def test_a_cannot_reach_b(app, client, factory, make_tiered, a_spec, b_spec):
    a = make_tiered(*TIER_SPECS[a_spec])
    b = make_tiered(*TIER_SPECS[b_spec])
    a_admin = factory.admin(a)
    b_user = factory.user(b, email=f"hidden@{b.slug}.example", name="Hidden Person")
    b_order = factory.order(b, number=777, customer="Hidden Customer")
    add_domain(get_tenant(b.id), f"{b.slug}.customer.example")
    secrets = (b.slug, b.name, b_user.email, "Hidden Person", "Hidden Customer", str(b_order.id), str(b_user.id))
    ids = {"user_id": b_user.id, "order_id": b_order.id, "job_id": factory.export_job(b).id,
           "key": factory.role(b, "b-only-role", {"orders.view"})}

    sign_in_tenant(client, a, a_admin)
    for url in tenant_get_urls(app, ids):
        # A's own address, B's ids: 404 where the route takes an id.
        own = client.get(f"/t/{a.slug}{url}")
        if any(str(value) in url for value in ids.values()):
            assert own.status_code == 404, (url, own.status_code)
        assert not leaks(own.get_data(as_text=True), secrets, asked=url), url
        # B's slug, B's subdomain, B's custom domain with A's session; B named in the header.
        attempts = [
            (f"/t/{b.slug}{url}", {}, f"/t/{b.slug}{url}"),
            (url, {"base_url": f"http://{b.slug}.{BASE_DOMAIN}"}, f"{b.slug}{url}"),
            (url, {"base_url": f"http://{b.slug}.customer.example"}, f"{b.slug}{url}"),
            (f"/t/{a.slug}{url}", {"headers": {"X-Tenant-ID": str(b.id)}}, url),
        ]
        for path, kwargs, asked in attempts:
            response = client.get(path, **kwargs)
            assert response.status_code in (302, 400, 404), (path, kwargs, response.status_code)
            if response.status_code == 302:
                assert "/login" in response.headers["Location"]
            assert not leaks(response.get_data(as_text=True), secrets, asked), (path, kwargs)
    # The API: A's address with B's header is refused without naming B.
    api = client.get(f"/t/{a.slug}/api/v1/status", headers={"X-Tenant-ID": b.slug})
    assert api.status_code == 400 and not leaks(api.get_data(as_text=True), secrets[1:])
