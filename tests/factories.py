"""Makers of tenants, users and staff for tests, and sign-in helpers."""
import re
import uuid

from portal.auth.principals import TenantPrincipal
from portal.auth.services import create_staff_user
from portal.lifecycle.provisioning import create_tenant
from portal.services.passwords import hash_password
from portal.tenancy.context import TenantRef
from portal.tenancy.data import Order, TenantRole, TenantUser
from portal.tenancy.placement import tenant_session, tenant_transaction

PASSWORD = "correct horse battery staple"


def unique_slug(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def csrf_token(html):
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


class Factory:
    def __init__(self, app):
        self.app = app

    def tenant(self, slug=None, plan="basic", name=None, admin_email=None, tier="pool", placement_id=None):
        """A tenant; pool unless asked (bridge and silo storage is committed for real:
        use the `tiers` fixture, which drops it after the test)."""
        slug = slug or unique_slug()
        tenant, _token = create_tenant(slug, name or f"Tenant {slug}", plan, admin_email or f"admin@{slug}.example",
                                       tier=tier, placement_id=placement_id)
        return TenantRef.of(tenant)

    def user(self, tenant, email=None, role="member", password=PASSWORD, name=""):
        email = email or f"user-{uuid.uuid4().hex[:8]}@{tenant.slug}.example"
        with tenant_transaction(tenant) as session:
            user = TenantUser(tenant_id=tenant.id, email=email, name=name, role=role,
                              password_hash=hash_password(password))
            session.add(user)
        return user

    def admin(self, tenant, password=PASSWORD):
        return self.user(tenant, role="admin", password=password)

    def principal(self, tenant, user):
        """`user` as the pages see it when signed in: with its role's permissions."""
        with tenant_session(tenant) as session:
            return TenantPrincipal.of(user, session)

    def role(self, tenant, key, permissions):
        with tenant_transaction(tenant) as session:
            session.add(TenantRole(tenant_id=tenant.id, key=key, name=key.title(), permissions=sorted(permissions)))
        return key

    def order(self, tenant, number=1, customer="Customer", amount_cents=1234):
        with tenant_transaction(tenant) as session:
            order = Order(tenant_id=tenant.id, number=number, customer=customer, amount_cents=amount_cents,
                          status="open")
            session.add(order)
        return order

    def export_job(self, tenant):
        """A finished export of `tenant` (run here, as a worker would)."""
        from portal.lifecycle.exports import request_export, run_export
        from portal.services import jobqueue
        from portal.tenants.services import get_tenant

        return jobqueue.run(request_export(get_tenant(tenant.id), ("system", None, "test")), run_export)

    def staff(self, role="superadmin", password=PASSWORD):
        user, _ = create_staff_user(f"{role}-{uuid.uuid4().hex[:8]}@staff.example", role, password)
        return user


def sign_in_staff(client, user, password=PASSWORD):
    page = client.get("/admin/login")
    response = client.post("/admin/login", data={
        "email": user.email, "password": password, "csrf_token": csrf_token(page.get_data(as_text=True)),
    })
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def sign_in_tenant(client, tenant, user, password=PASSWORD, prefix=None, **kwargs):
    prefix = f"/t/{tenant.slug}" if prefix is None else prefix
    page = client.get(f"{prefix}/login", **kwargs)
    response = client.post(f"{prefix}/login", data={
        "email": user.email, "password": password, "csrf_token": csrf_token(page.get_data(as_text=True)),
    }, **kwargs)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def make_token(tenant, actor, scopes=None, days=None, name="ci"):
    """An API token of `tenant` made by `actor` (a TenantUser), with every scope unless
    `scopes` says; returns the token."""
    from portal.tenancy.context import tenant_context
    from portal.tokens import services as tokens

    with tenant_context(tenant):
        with tenant_session(tenant) as session:
            maker = TenantPrincipal.of(actor, session)
        return tokens.create(name, list(tokens.SCOPES) if scopes is None else scopes, days, maker)[1]


def auth(token, **headers):
    """Request headers carrying `token`."""
    return {"Authorization": f"Bearer {token}", **headers}
