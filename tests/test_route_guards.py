"""Every route of the URL map, walked: staff routes against the role table, tenant
routes against another tenant's ids, slug, host and header."""
import uuid

import pytest
from sqlalchemy import select

from portal.auth.staff_roles import PERMISSIONS
from portal.extensions import db
from portal.models import STAFF_ROLES, AuditEvent
from tests.conftest import BASE_DOMAIN
from tests.factories import sign_in_staff, sign_in_tenant
from tests.routes import OPERATIONS_BLUEPRINTS, STAFF_BLUEPRINTS, TENANT_BLUEPRINTS, leaks, tenant_get_urls
from tests.routes import fill as _fill
from tests.routes import rules as _rules


def test_every_blueprint_is_walked(app):
    """A blueprint is a staff face or a tenant face (or sign-in, or the API): the walkers
    find it in tests/routes.py, and its guard in the blueprint."""
    assert set(app.blueprints) == STAFF_BLUEPRINTS | TENANT_BLUEPRINTS | OPERATIONS_BLUEPRINTS | {"auth", "api"}
    for name in STAFF_BLUEPRINTS:
        assert hasattr(app.blueprints[name], "staff_permissions"), name
    for name in TENANT_BLUEPRINTS:
        assert hasattr(app.blueprints[name], "tenant_permissions"), name


def test_every_staff_endpoint_declares_a_permission(app):
    for rule in _rules(app, STAFF_BLUEPRINTS):
        blueprint, endpoint = rule.endpoint.split(".")
        permission = app.blueprints[blueprint].staff_permissions.get(endpoint)
        assert permission in PERMISSIONS, f"{rule.endpoint} has no permission in the role table"


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_staff_roles_per_route(app, client, factory, role):
    tenant = factory.tenant()
    sign_in_staff(client, factory.staff(role))
    client.application.config["WTF_CSRF_ENABLED"] = False  # the guard answers before the form
    try:
        # Signing out everywhere last: every route after it would find the walker signed out.
        for rule in sorted(_rules(app, STAFF_BLUEPRINTS), key=lambda r: r.endpoint in SIGNS_OUT):
            blueprint, endpoint = rule.endpoint.split(".")
            permission = app.blueprints[blueprint].staff_permissions[endpoint]
            url = _fill(rule, _staff_ids(tenant))
            method = "GET" if "GET" in rule.methods else "POST"
            response = client.open(url, method=method, data={})
            allowed = role in PERMISSIONS[permission]
            if allowed:  # past the guard: the page, a redirect, a form error, or no such object
                assert response.status_code in (200, 302, 400, 404), (role, url, response.status_code)
                if rule.endpoint not in SIGNS_OUT:
                    assert "/admin/login" not in response.headers.get("Location", ""), (role, url)
            else:
                assert response.status_code == 403, (role, url, response.status_code)
    finally:
        client.application.config["WTF_CSRF_ENABLED"] = True


# Routes whose point is to end the staff member's own session: they answer with the sign-in page.
SIGNS_OUT = {"staff.end_everywhere"}


def _staff_ids(tenant):
    return {"tenant_id": tenant.id, "code": "basic", "override_id": uuid.uuid4(), "request_id": uuid.uuid4(),
            "decision": "approve", "job_id": uuid.uuid4(), "event_id": _an_event_of(tenant)}


def _an_event_of(tenant):
    """An audit event of `tenant` (its creation's): the audit detail page's id."""
    return db.session.execute(select(AuditEvent.id).where(AuditEvent.tenant_id == tenant.id).limit(1)).scalar_one()


def test_staff_routes_need_sign_in(app, client, factory):
    tenant = factory.tenant()
    for rule in _rules(app, STAFF_BLUEPRINTS):
        url = _fill(rule, _staff_ids(tenant))
        method = "GET" if "GET" in rule.methods else "POST"
        response = client.open(url, method=method)
        if method == "GET":
            assert response.status_code == 302 and "/admin/login" in response.headers["Location"], url
        else:
            assert response.status_code in (302, 400), url  # no CSRF token: refused before anything


@pytest.fixture()
def tenant_pair(factory):
    """A signed-in admin of A, and B with a user and an order of its own."""
    a, b = factory.tenant(), factory.tenant()
    a_admin = factory.admin(a)
    b_user = factory.user(b, email=f"secret-user@{b.slug}.example", name="Bobby Secret")
    b_order = factory.order(b, number=4242, customer="Secret Customer B")
    b_order.job_id = factory.export_job(b).id  # B's export: a job id of B's to try as A
    b_order.role_key = factory.role(b, "secret-b-role", {"orders.view"})
    return a, b, a_admin, b_user, b_order


def _tenant_urls(app, ids):
    return tenant_get_urls(app, ids, with_ids_only=True)


def _leaks(body, b, b_user, b_order, asked=""):
    """What of B's shows in `body`, beyond what the caller itself wrote in `asked`."""
    return leaks(body, (b.slug, b.name, b_user.email, "Bobby Secret", "Secret Customer B", str(b_order.id),
                        "Secret-B-Role"), asked)


def test_tenant_routes_with_other_tenants_ids_are_404(app, client, tenant_pair):
    a, b, a_admin, b_user, b_order = tenant_pair
    sign_in_tenant(client, a, a_admin)  # at the path prefix
    sign_in_tenant(client, a, a_admin, prefix="", base_url=f"http://{a.slug}.{BASE_DOMAIN}")  # on the host
    ids = {"user_id": b_user.id, "order_id": b_order.id, "job_id": b_order.job_id, "key": b_order.role_key}
    urls = list(_tenant_urls(app, ids))
    assert urls, "no tenant routes with ids found"
    for url in urls:
        for how in ("path", "host"):
            if how == "path":
                response = client.get(f"/t/{a.slug}{url}")
            else:
                response = client.get(url, base_url=f"http://{a.slug}.{BASE_DOMAIN}")
            assert response.status_code == 404, (how, url, response.status_code)
            assert not _leaks(response.get_data(as_text=True), b, b_user, b_order), (how, url)
        # A malformed id is the same 404.
        assert client.get(f"/t/{a.slug}{_fill_garbage(url, ids)}").status_code == 404


def _fill_garbage(url, ids):
    for value in ids.values():
        url = url.replace(str(value), "not-a-uuid")
    return url


def test_session_of_a_cannot_read_b_by_slug_host_or_header(app, client, tenant_pair):
    a, b, a_admin, b_user, b_order = tenant_pair
    sign_in_tenant(client, a, a_admin)
    ids = {"user_id": b_user.id, "order_id": b_order.id, "job_id": b_order.job_id, "key": b_order.role_key}
    plain = [_fill(r, ids) for r in _rules(app, TENANT_BLUEPRINTS) if "GET" in r.methods]
    for url in plain:
        for response, asked in (
            (client.get(f"/t/{b.slug}{url}"), f"/t/{b.slug}{url}"),                       # B's slug
            (client.get(url, base_url=f"http://{b.slug}.{BASE_DOMAIN}"), f"{b.slug}{url}"),  # B's host
            (client.get(f"/t/{a.slug}{url}", headers={"X-Tenant-ID": b.slug}), url),        # B's header
        ):
            assert response.status_code in (302, 400, 404), (url, response.status_code)
            if response.status_code == 302:
                assert "/login" in response.headers["Location"]
            assert not _leaks(response.get_data(as_text=True), b, b_user, b_order, asked), url


def test_own_ids_work(app, client, factory):
    """The same walk with A's own ids answers 200: the 404s above are about ownership."""
    a = factory.tenant()
    admin = factory.admin(a)
    order = factory.order(a, number=7, customer="Own Customer")
    sign_in_tenant(client, a, admin)
    job = factory.export_job(a)
    key = factory.role(a, "own-role", {"orders.view"})
    for url in _tenant_urls(app, {"user_id": admin.id, "order_id": order.id, "job_id": job.id, "key": key}):
        assert client.get(f"/t/{a.slug}{url}").status_code == 200, url


def test_api_names_no_other_tenant(client, factory):
    a, b = factory.tenant(), factory.tenant()
    response = client.get(f"/t/{a.slug}/api/v1/status", headers={"X-Tenant-ID": str(b.id)})
    assert response.status_code == 400 and b.slug not in response.get_data(as_text=True)
    response = client.get("/api/v1/status", headers={"X-Tenant-ID": str(uuid.uuid4())})
    assert response.status_code == 404 and response.is_json


def test_operations_routes_need_no_sign_in_and_show_nothing_to_strangers(app, client):
    """/healthz and /readyz answer anyone; /metrics only its allowed addresses (404 to others)."""
    far = {"REMOTE_ADDR": "203.0.113.9"}
    for rule in _rules(app, OPERATIONS_BLUEPRINTS):
        response = client.get(rule.rule, environ_base=far)
        if rule.endpoint == "metrics.scrape":
            assert response.status_code == 404, rule.rule
            assert client.get(rule.rule).status_code == 200  # from loopback
        else:
            assert response.status_code == 200, rule.rule
