"""The pictures in README.md and docs/: the main pages, taken by this test so they stay
current. Each picture is taken after the page is checked; the files are written only
when PORTAL_SCREENSHOTS names a folder (`make screenshots` writes docs/screenshots/).

The journey: staff sign in (the console's list, also at 390 px with its menu open),
create a tenant and watch its provisioning job part-way (the test holds a lock on the
outbox, so the job waits at its invitation step while the picture is taken), open the
tenant's page; its first admin sets a password (the tenant's home); staff impersonate
the admin (the banner).
"""
import os
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from portal.extensions import db
from tests.browser.helpers import ADMIN_PASSWORD
from tests.browser.test_journeys import open_new_tenant_form, sign_in_staff
from tests.factories import unique_slug

pytestmark = pytest.mark.browser

FOLDER = os.environ.get("PORTAL_SCREENSHOTS")


def shoot(page, name, full_page=False):
    if FOLDER:
        os.makedirs(FOLDER, exist_ok=True)
        page.screenshot(path=os.path.join(FOLDER, f"{name}.png"), full_page=full_page)


class OutboxHeld:
    """A lock on the outbox for as long as the block runs: provisioning waits at the step
    that writes the first admin's invitation; pages still read everything."""

    def __init__(self, live_app):
        self.live_app = live_app

    def __enter__(self):
        self.context = self.live_app.app_context()
        self.context.push()
        self.conn = db.engine.connect()
        self.transaction = self.conn.begin()
        self.conn.execute(text("LOCK TABLE registry.outbox IN EXCLUSIVE MODE"))
        return self

    def __exit__(self, *exc):
        self.transaction.rollback()
        self.conn.close()
        db.session.remove()
        self.context.pop()


def test_the_main_pages_as_pictures(browser, base_url, live_app, staff_user, made_through_ui):
    context = browser.new_context(base_url=base_url, viewport={"width": 1366, "height": 820})
    page = context.new_page()
    sign_in_staff(page, staff_user)
    expect(page.locator("#tenants")).to_be_visible()

    # A tenant created through the console, its provisioning seen part-way.
    slug = made_through_ui.tenant(unique_slug("shot"))
    open_new_tenant_form(page)
    page.get_by_label("Slug").fill(slug)
    page.get_by_label("Name").fill("Northwind Traders")
    page.get_by_label("Plan", exact=True).select_option("professional")
    page.get_by_label("First admin's email").fill(f"owner@{slug}.example")
    with OutboxHeld(live_app):
        page.get_by_role("button", name="Create tenant").click()
        expect(page).to_have_url(re.compile(r"/admin/tenants/[0-9a-f-]{36}$"))
        step = page.locator('.steps [data-step="first admin and invitation"]')
        expect(step).to_contain_text("running", timeout=30_000)
        expect(page.locator('.steps [data-step="storage"]')).to_contain_text("done")
        expect(page.locator("h1 .badge")).to_have_text("provisioning")
        shoot(page, "provisioning-job")
    expect(page.locator("h1 .badge")).to_have_text("active", timeout=30_000)
    tenant_url = page.url

    # The console's list, wide and on a phone with the menu open.
    page.goto("/admin/tenants")
    expect(page.locator("#tenants")).to_contain_text(slug)
    shoot(page, "console-tenants")
    phone = browser.new_context(base_url=base_url, viewport={"width": 390, "height": 844},
                                storage_state=context.storage_state())
    small = phone.new_page()
    small.goto("/admin/tenants")
    small.locator("#menu-toggle").click()
    expect(small.get_by_role("navigation", name="Main")).to_be_visible()
    assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shoot(small, "console-phone-menu", full_page=True)
    phone.close()

    # The tenant's page: its tabs.
    page.goto(tenant_url)
    expect(page.get_by_role("tab", name="Overview")).to_have_attribute("aria-selected", "true")
    shoot(page, "console-tenant-page")
    page.get_by_role("tab", name="Danger zone").click()
    expect(page.get_by_role("button", name="Deprovision tenant")).to_be_visible()
    expect(page.get_by_role("button", name="Rename")).to_be_hidden()

    # The first admin's link (from the outbox), a password, the tenant's home.
    page.get_by_role("tab", name="Overview").click()
    page.locator("#invitation-message").click()
    link = re.search(rf"https?://[^/\s]+(/t/{re.escape(slug)}/set-password/[A-Za-z0-9_-]+)",
                     page.locator("#message-body").inner_text())
    assert link
    tenant_side = browser.new_context(base_url=base_url, viewport={"width": 1366, "height": 820})
    admin = tenant_side.new_page()
    admin.goto(link.group(1))
    admin.get_by_label("New password").fill(ADMIN_PASSWORD)
    admin.get_by_label("Repeat the password").fill(ADMIN_PASSWORD)
    admin.get_by_role("button", name="Set password").click()
    expect(admin).to_have_url(re.compile(rf"/t/{slug}/$"))
    expect(admin.locator('nav a[aria-current="page"]')).to_have_text("Home")
    shoot(admin, "tenant-home")
    tenant_side.close()

    # Staff impersonate the admin: the banner on every tenant page.
    page.goto(tenant_url)
    page.get_by_role("link", name="Impersonate a user").click()
    page.get_by_label("User", exact=True).select_option(label=f"owner@{slug}.example (admin)")
    page.get_by_label("Reason", exact=True).fill("Customer asked for help with the usage page")
    page.get_by_label("Ticket").fill("SUP-1042")
    page.get_by_role("button", name="Start impersonation").click()
    expect(page.locator("#impersonation-banner")).to_contain_text("read-only")
    page.get_by_role("navigation").get_by_role("link", name="Usage", exact=True).click()
    expect(page.locator("#impersonation-banner")).to_be_visible()
    shoot(page, "impersonation-banner")
    page.locator("#impersonation-banner").get_by_role("button", name="End").click()
    context.close()
