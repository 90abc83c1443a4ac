"""Steps many browser journeys share: a tenant made for the test, its first admin signed in,
a staff member or a tenant user signed in."""
import re

from playwright.sync_api import expect

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


def staff_signs_in(page, email, password):
    """A staff member signs in to the console: on the tenant list."""
    page.goto("/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/admin/tenants$"))


def user_signs_in(page, slug, email, password):
    """A tenant's user signs in: on the tenant's home."""
    page.goto(f"/t/{slug}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(slug)}/$"))
