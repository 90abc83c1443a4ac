"""Every tenant route that changes something (POST), walked as tenant A's admin against
tenant B: B's ids at A's address (404), A's session at B's slug and host (no one is
signed in there), B named in the X-Tenant-ID header (refused). B is unchanged after each
attempt, and nothing of B's shows in any answer."""
import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import TenantDomain
from portal.tenancy.context import tenant_context
from portal.tenancy.data import ApiToken, Order, TenantRole, TenantSetting, TenantUser
from portal.tenancy.placement import tenant_session
from portal.tokens import services as tokens
from tests.conftest import BASE_DOMAIN
from tests.factories import sign_in_tenant
from tests.routes import TENANT_BLUEPRINTS, fill, leaks, rules

# What a form could carry: were a request to land in B, it would change B.
FORM = {"email": "intruder@evil.example", "name": "Intruder", "role": "admin", "permissions": ["users.create"],
        "domain": "evil.example.org", "scopes": ["orders:read"], "days": "30", "display_colour": "#000000",
        "session_minutes": "60", "support_access": "y", "plan": "enterprise", "reason": "because"}


def _snapshot(tenant):
    """Everything of `tenant` a tenant route could change."""
    with tenant_session(tenant) as session:
        state = tuple(
            sorted(repr(sorted((k, str(v)) for k, v in row.__dict__.items() if not k.startswith("_")))
                   for row in session.execute(select(model)).scalars())
            for model in (TenantUser, TenantRole, Order, TenantSetting, ApiToken))
    domains = db.session.execute(select(TenantDomain.domain, TenantDomain.verified_at)
                                 .where(TenantDomain.tenant_id == tenant.id)).all()
    return state, sorted(domains)


@pytest.fixture()
def b_with_everything(factory):
    """Tenant B with one of each thing a tenant route takes an id of."""
    b = factory.tenant(plan="professional", name="Bravo Hidden Ltd")
    b_admin = factory.admin(b)
    user = factory.user(b, email=f"hidden-user@{b.slug}.example", name="Hidden Person")
    order = factory.order(b, number=9191, customer="Hidden Customer")
    with tenant_context(b):
        token, _secret = tokens.create("hidden bot", ["orders:read"], None, factory.principal(b, b_admin))
    domain = TenantDomain(tenant_id=b.id, domain=f"{b.slug}.hidden.example", verification_token="t" * 32)
    db.session.add(domain)
    db.session.flush()
    ids = {"user_id": user.id, "order_id": order.id, "job_id": factory.export_job(b).id,
           "key": factory.role(b, "hidden-role", {"orders.view"}), "token_id": token.id,
           "domain_id": domain.id, "action": "disable"}
    secrets = (b.slug, b.name, user.email, "Hidden Person", "Hidden Customer", str(order.id), "hidden bot",
               "Hidden-Role", domain.domain)
    return b, ids, secrets


def test_every_tenant_write_with_b_s_ids_slug_host_or_header_leaves_b_alone(app, client, factory, b_with_everything):
    b, ids, secrets = b_with_everything
    a = factory.tenant(plan="professional")
    sign_in_tenant(client, a, factory.admin(a))
    sign_in_tenant(client, a, factory.admin(a), prefix="", base_url=f"http://{a.slug}.{BASE_DOMAIN}")
    before = _snapshot(b)
    writes = [r for r in rules(app, TENANT_BLUEPRINTS) if "POST" in r.methods]
    assert len(writes) > 12
    app.config["WTF_CSRF_ENABLED"] = False  # past CSRF, so that only the tenant boundary stops them
    try:
        for rule in writes:
            url = fill(rule, ids)
            attempts = [
                (f"/t/{b.slug}{url}", {}, f"/t/{b.slug}{url}"),                                   # B's slug
                (url, {"base_url": f"http://{b.slug}.{BASE_DOMAIN}"}, f"{b.slug}{url}"),          # B's host
                (f"/t/{a.slug}{url}", {"headers": {"X-Tenant-ID": str(b.id)}}, url),              # B's header
            ]
            if rule.arguments - {"action"}:
                attempts.append((f"/t/{a.slug}{url}", {"ids": True}, url))                        # B's ids at A
            for path, kwargs, asked in attempts:
                b_ids_at_a = kwargs.pop("ids", False)
                response = client.post(path, data=FORM, **kwargs)
                status = response.status_code
                if b_ids_at_a:  # A's admin may use the route, but no such object is A's
                    assert status == 404, (path, status)
                elif status == 302:  # to a sign-in page: A's session is nobody at B
                    assert "/login" in response.headers["Location"], (path, kwargs)
                else:
                    assert status in (400, 404), (path, kwargs, status)
                assert not leaks(response.get_data(as_text=True), secrets, asked), (path, kwargs)
                assert _snapshot(b) == before, (path, kwargs)
    finally:
        app.config["WTF_CSRF_ENABLED"] = True
