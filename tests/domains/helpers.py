"""What the custom-domain tests share: the domain they claim, and reading and posting."""
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, TenantDomain
from tests.factories import csrf_token

DOMAIN = "shop.customer-example.com"
RECORD = f"_tenancy-portal.{DOMAIN}"


def domains(tenant):
    return db.session.execute(select(TenantDomain).where(TenantDomain.tenant_id == tenant.id)).scalars().all()


def row(domain):
    """The one row of `domain` (several tenants' claims of one name: use `claim`)."""
    db.session.expire_all()  # the requests committed in their own sessions
    return db.session.execute(select(TenantDomain).where(TenantDomain.domain == domain)).scalar_one_or_none()


def claim(tenant, domain):
    """`tenant`'s claim of `domain`, or None."""
    db.session.expire_all()
    return db.session.execute(select(TenantDomain).where(
        TenantDomain.domain == domain, TenantDomain.tenant_id == tenant.id)).scalar_one_or_none()


def events(tenant, action):
    """`tenant`'s audit events of `action`."""
    db.session.expire_all()
    return db.session.execute(select(AuditEvent).where(
        AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)).scalars().all()


def post(client, prefix, path, data=None, **kwargs):
    """POST to `prefix + path` with a CSRF token taken from the domains page (or, where
    the user may not see it, from the home page)."""
    page = client.get(f"{prefix}/domains", **kwargs)
    if page.status_code != 200:
        page = client.get(f"{prefix}/", **kwargs)
    token = csrf_token(page.get_data(as_text=True))
    return client.post(f"{prefix}{path}", data={**(data or {}), "csrf_token": token}, **kwargs)


def resolves_to(client, domain, tenant):
    """Does a request with Host: `domain` reach `tenant`'s sign-in page?"""
    page = client.get("/login", base_url=f"http://{domain}")
    if page.status_code == 404:
        return False
    assert page.status_code == 200 and tenant.name in page.get_data(as_text=True)
    return True
