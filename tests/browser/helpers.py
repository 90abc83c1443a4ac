"""Steps many browser journeys share: a tenant made for the test, its first admin signed in."""
from portal.extensions import db
from portal.lifecycle.provisioning import create_tenant
from portal.services.passwords import hash_password
from portal.tenancy.context import TenantRef
from portal.tenancy.data import TenantUser
from portal.tenancy.placement import tenant_transaction
from tests.factories import PASSWORD

ADMIN_PASSWORD = "a long browser password 42"


def make_tenant(live_app, slug, name, plan="basic", users=()):
    """A pool tenant committed on the live app's database, with `users` ((email, role)
    pairs, password PASSWORD) beside its first admin (owner@<slug>.example). Returns the
    first admin's set-password token."""
    with live_app.app_context():
        try:
            tenant, token = create_tenant(slug, name, plan, f"owner@{slug}.example", tier="pool")
            with tenant_transaction(TenantRef.of(tenant)) as session:
                session.add_all(TenantUser(tenant_id=tenant.id, email=email, role=role, name=email.split("@")[0],
                                           password_hash=hash_password(PASSWORD)) for email, role in users)
        finally:
            db.session.remove()
    return token


def first_admin_signs_in(page, slug, token):
    """The first admin follows the link provisioning gave and sets a password: signed in."""
    page.goto(f"/t/{slug}/set-password/{token}")
    page.get_by_label("New password").fill(ADMIN_PASSWORD)
    page.get_by_label("Repeat the password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Set password").click()
