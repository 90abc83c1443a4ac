"""Tenant resolution: each method, their precedence, and the answers for tenants that
cannot be served."""
import re

import pytest
from sqlalchemy import update

from portal.domains.services import record_for_tenant as add_domain
from portal.extensions import db
from portal.lifecycle import states
from portal.models import Tenant
from portal.tenants.services import get_tenant
from tests.conftest import BASE_DOMAIN
from tests.factories import sign_in_tenant


def _home_of(client, tenant, **kwargs):
    """The tenant sign-in page names the tenant: a cheap way to see who answered."""
    return client.get("/login", **kwargs)


def test_path_prefix_resolves_and_keeps_prefix_in_urls(client, factory):
    tenant = factory.tenant()
    page = client.get(f"/t/{tenant.slug}/login")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert tenant.name in body
    # url_for keeps the prefix: the form posts back under /t/<slug>/.
    assert f'href="/t/{tenant.slug}/static/css/portal.css"' in body
    assert client.get(f"/t/{tenant.slug}/").headers["Location"].startswith(f"/t/{tenant.slug}/login")


def test_subdomain_resolves(client, factory):
    tenant = factory.tenant()
    page = client.get("/login", base_url=f"http://{tenant.slug}.{BASE_DOMAIN}")
    assert page.status_code == 200
    assert tenant.name in page.get_data(as_text=True)


def test_custom_domain_resolves(client, factory):
    tenant = factory.tenant()
    add_domain(get_tenant(tenant.id), "shop.customer-example.com")
    page = client.get("/login", base_url="http://shop.customer-example.com")
    assert page.status_code == 200
    assert tenant.name in page.get_data(as_text=True)


def test_header_resolves_on_api_by_slug_and_by_id(client, factory):
    tenant = factory.tenant()
    by_slug = client.get("/api/v1/status", headers={"X-Tenant-ID": tenant.slug})
    by_id = client.get("/api/v1/status", headers={"X-Tenant-ID": str(tenant.id)})
    assert by_slug.json == by_id.json == {"tenant": tenant.slug, "status": "active"}


def test_host_and_path_must_name_one_tenant(client, factory):
    a, b, c = factory.tenant(), factory.tenant(), factory.tenant()
    add_domain(get_tenant(b.id), "b-shop.example.org")
    # A's path prefix on C's host: A's cookie would land on C's origin. Not found.
    page = client.get(f"/t/{a.slug}/login", base_url=f"http://{c.slug}.{BASE_DOMAIN}")
    assert page.status_code == 404
    assert a.name not in page.get_data(as_text=True) and c.name not in page.get_data(as_text=True)
    # ... nor on B's custom domain; on A's own host, or an admin host, it is A's page.
    assert client.get(f"/t/{a.slug}/login", base_url="http://b-shop.example.org").status_code == 404
    for host in (f"{a.slug}.{BASE_DOMAIN}", "localhost", BASE_DOMAIN, f"admin.{BASE_DOMAIN}"):
        page = client.get(f"/t/{a.slug}/login", base_url=f"http://{host}")
        assert page.status_code == 200 and a.name in page.get_data(as_text=True), host
    # Custom domain answers for its tenant.
    page = client.get("/login", base_url="http://b-shop.example.org")
    assert b.name in page.get_data(as_text=True)


def test_header_must_agree_with_tenant_named_otherwise(client, factory):
    a, b = factory.tenant(), factory.tenant()
    agree = client.get(f"/t/{a.slug}/api/v1/status", headers={"X-Tenant-ID": a.slug})
    assert agree.status_code == 200 and agree.json["tenant"] == a.slug
    clash = client.get(f"/t/{a.slug}/api/v1/status", headers={"X-Tenant-ID": b.slug})
    assert clash.status_code == 400
    assert "does not match" in clash.json["error"]["message"]
    assert b.slug not in clash.get_data(as_text=True)


def test_forged_header_on_page_request_is_refused(client, factory):
    tenant = factory.tenant()
    response = client.get("/admin/login", headers={"X-Tenant-ID": tenant.slug})
    assert response.status_code == 400
    assert "accepted on /api/ paths only" in response.get_data(as_text=True)
    response = client.get(f"/t/{tenant.slug}/login", headers={"X-Tenant-ID": tenant.slug})
    assert response.status_code == 400


def test_unknown_tenant_404_by_every_method(client, factory):
    assert client.get("/t/nosuch-tenant/login").status_code == 404
    assert client.get("/login", base_url=f"http://nosuch-tenant.{BASE_DOMAIN}").status_code == 404
    api = client.get("/api/v1/status", headers={"X-Tenant-ID": "nosuch-tenant"})
    assert api.status_code == 404 and api.is_json
    assert client.get("/t/Not_A_Slug/login").status_code == 404


def test_unknown_host_gets_a_page(client):
    response = client.get("/login", base_url="http://stranger.example.net")
    assert response.status_code == 404
    assert "No tenant is served at stranger.example.net" in response.get_data(as_text=True)
    deep = client.get("/login", base_url=f"http://a.b.{BASE_DOMAIN}")
    assert deep.status_code == 404


def test_suspended_tenant_403_with_page(client, factory):
    tenant = factory.tenant()
    states.suspend(get_tenant(tenant.id), "unpaid invoices", ("system", None, "test"))
    page = client.get(f"/t/{tenant.slug}/login")
    assert page.status_code == 403
    body = page.get_data(as_text=True)
    assert "suspended" in body and "unpaid invoices" in body
    api = client.get("/api/v1/status", headers={"X-Tenant-ID": tenant.slug})
    assert api.status_code == 403 and api.is_json


def _tenant_in_state(client, factory, status):
    """A new tenant put in `status` (committed), the app's lookup cache told."""
    tenant = factory.tenant()
    db.session.execute(update(Tenant).where(Tenant.id == tenant.id).values(status=status))
    db.session.commit()
    client.application.extensions["portal.tenant_lookup"].invalidate(tenant.id, tenant.slug)
    return tenant


@pytest.mark.parametrize("status, code", [
    ("deprovisioning", 410), ("archived", 410), ("purged", 410), ("failed", 404), ("provisioning", 503)])
def test_tenants_not_in_service(client, factory, status, code):
    tenant = _tenant_in_state(client, factory, status)
    response = client.get(f"/t/{tenant.slug}/login")
    assert response.status_code == code
    assert tenant.name not in response.get_data(as_text=True)
    if code == 503:
        assert response.headers["Retry-After"]
    api = client.get("/api/v1/status", headers={"X-Tenant-ID": tenant.slug})
    assert api.status_code == code and api.is_json


def test_lookup_cache_is_invalidated_on_change(client, factory, redis_client, servers):
    tenant = factory.tenant()
    assert client.get(f"/t/{tenant.slug}/login").status_code == 200
    assert redis_client.exists(f"{servers.redis_prefix}:tenant:slug:{tenant.slug}")
    states.suspend(get_tenant(tenant.id), "fraud check", ("system", None, "test"))
    assert not redis_client.exists(f"{servers.redis_prefix}:tenant:slug:{tenant.slug}")
    assert client.get(f"/t/{tenant.slug}/login").status_code == 403
    states.resume(get_tenant(tenant.id), "cleared", ("system", None, "test"))
    assert client.get(f"/t/{tenant.slug}/login").status_code == 200


def test_session_of_tenant_a_is_anonymous_on_b_and_console(client, factory):
    a, b = factory.tenant(), factory.tenant()
    user = factory.admin(a)
    sign_in_tenant(client, a, user)
    assert client.get(f"/t/{a.slug}/").status_code == 200
    on_b = client.get(f"/t/{b.slug}/")
    assert on_b.status_code == 302 and "/login" in on_b.headers["Location"]
    console = client.get("/admin/tenants")
    assert console.status_code == 302 and "/admin/login" in console.headers["Location"]


def test_session_cookie_copied_to_another_tenant_is_anonymous(client, factory):
    a, b = factory.tenant(), factory.tenant()
    sign_in_tenant(client, a, factory.admin(a))
    cookie_a = client.get_cookie(f"session_t{a.id.hex}", path=f"/t/{a.slug}/")
    assert cookie_a is not None
    client.set_cookie(f"session_t{b.id.hex}", cookie_a.value, path=f"/t/{b.slug}/")
    response = client.get(f"/t/{b.slug}/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# Issue 14, item 1: refusal pages keep their stylesheet: static files are never refused.

STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+)">')


def _stylesheet_answers(client, page, **kwargs):
    """The page links a stylesheet, and it answers 200 with CSS."""
    href = STYLESHEET.search(page.get_data(as_text=True)).group(1)
    css = client.get(href, **kwargs)
    assert css.status_code == 200 and css.mimetype == "text/css", href
    assert "--accent" in css.get_data(as_text=True)  # the portal's own stylesheet
    return href


def test_a_suspended_tenants_403_page_keeps_its_stylesheet(client, factory):
    tenant = factory.tenant()
    states.suspend(get_tenant(tenant.id), "unpaid invoices", ("system", None, "test"))
    page = client.get(f"/t/{tenant.slug}/login")
    assert page.status_code == 403 and page.mimetype == "text/html"
    assert _stylesheet_answers(client, page) == f"/t/{tenant.slug}/static/css/portal.css"
    assert client.get(f"/t/{tenant.slug}/static/js/console.js").status_code == 200
    # On the tenant's own subdomain too.
    host = f"http://{tenant.slug}.{BASE_DOMAIN}"
    page = client.get("/login", base_url=host)
    assert page.status_code == 403
    assert _stylesheet_answers(client, page, base_url=host) == "/static/css/portal.css"
    # A static file that does not exist is still not found, not a refusal.
    assert client.get(f"/t/{tenant.slug}/static/css/nothing.css").status_code == 404


@pytest.mark.parametrize("status, code", [("deprovisioning", 410), ("provisioning", 503), ("failed", 404)])
def test_a_tenant_out_of_service_keeps_its_stylesheet(client, factory, status, code):
    tenant = _tenant_in_state(client, factory, status)
    page = client.get(f"/t/{tenant.slug}/login")
    assert page.status_code == code
    _stylesheet_answers(client, page)


def test_an_unknown_tenant_or_host_keeps_its_stylesheet(client):
    page = client.get("/t/no-such-tenant/login")
    assert page.status_code == 404
    _stylesheet_answers(client, page)
    assert client.get("/t/no-such-tenant/static/css/portal.css").status_code == 200
    host = f"http://no-such-tenant.{BASE_DOMAIN}"
    page = client.get("/login", base_url=host)
    assert page.status_code == 404 and "There is no tenant" in page.get_data(as_text=True)
    _stylesheet_answers(client, page, base_url=host)
    host = "http://shop.unknown-customer.example"  # a custom domain no tenant has
    page = client.get("/login", base_url=host)
    assert page.status_code == 404 and "No tenant is served" in page.get_data(as_text=True)
    _stylesheet_answers(client, page, base_url=host)
    # Only static files: anything else of an unknown tenant stays refused.
    assert client.get("/t/no-such-tenant/staticx/portal.css").status_code == 404
    assert "There is no tenant" in client.get("/t/no-such-tenant/static").get_data(as_text=True)
