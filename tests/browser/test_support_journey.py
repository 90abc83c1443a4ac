"""Support in the browser: a support staff member impersonates a tenant's admin with a
reason and a ticket, sees the banner, is refused a write, ends it; then the tenant's admin
finds it all in the tenant's own audit log."""
import re
import uuid

import pytest
from playwright.sync_api import expect

from portal.auth.services import create_staff_user
from portal.extensions import db
from tests.browser.helpers import make_tenant
from tests.factories import PASSWORD, unique_slug

pytestmark = pytest.mark.browser


def test_support_impersonates_read_only_and_the_tenant_sees_it(page, browser, browser_context_args, live_app,
                                                                 made_through_ui):
    slug = made_through_ui.tenant(unique_slug("brs"))
    admin_email = f"boss@{slug}.example"
    make_tenant(live_app, slug, f"Support {slug}", users=[(admin_email, "admin")])
    support_email = f"support-{uuid.uuid4().hex[:8]}@staff.example"
    with live_app.app_context():
        try:
            create_staff_user(support_email, "support", PASSWORD)
        finally:
            db.session.remove()

    # Support signs in, opens the tenant, starts a read-only impersonation of its admin.
    page.goto("/admin/login")
    page.get_by_label("Email").fill(support_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("searchbox", name="Search").fill(slug)
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=slug, exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/tenants/[0-9a-f-]{36}$"))
    console_url = page.url
    page.get_by_role("link", name="Impersonate a user").click()
    page.get_by_label("User", exact=True).select_option(label=f"{admin_email} (admin)")
    page.get_by_label("Reason", exact=True).fill("Customer cannot find the settings page")
    page.get_by_label("Ticket").fill("SUP-2024")
    page.get_by_role("button", name="Start impersonation").click()

    # The tenant's pages, as its admin, under a banner.
    expect(page).to_have_url(re.compile(rf"/t/{slug}/$"))
    banner = page.locator("#impersonation-banner")
    expect(banner).to_contain_text(f"{support_email} (support) viewing as {admin_email}")
    expect(banner).to_contain_text(re.compile(r"\b1[45] min left"))
    expect(banner).to_contain_text("read-only")

    # A write is refused; the banner stays.
    page.get_by_role("navigation").get_by_role("link", name="Settings", exact=True).click()
    page.get_by_label("Name").fill("Renamed by support")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#read-only")).to_contain_text("read-only impersonation")

    # End: back in the console, on the tenant's page.
    banner.get_by_role("button", name="End").click()
    expect(page).to_have_url(console_url)
    expect(page.locator("header")).to_contain_text(support_email)

    # The tenant's admin, in a browser of their own, reads the tenant's audit log.
    context = browser.new_context(**browser_context_args)
    try:
        admin = context.new_page()
        admin.goto(f"/t/{slug}/login")
        admin.get_by_label("Email").fill(admin_email)
        admin.get_by_label("Password").fill(PASSWORD)
        admin.get_by_role("button", name="Sign in").click()
        expect(admin.locator("header .brand")).to_have_text(f"Support {slug}")  # the name was not changed
        admin.get_by_role("navigation").get_by_role("link", name="Audit log", exact=True).click()
        audit = admin.locator("#audit")
        for action in ("impersonation.started", "impersonation.request", "impersonation.ended"):
            expect(audit.locator("tr", has_text=action).first).to_contain_text(support_email)
        expect(audit).to_contain_text("Customer cannot find the settings page")
        expect(audit.locator("tr", has_text=f"POST /t/{slug}/settings")).to_contain_text("403")
    finally:
        context.close()
