"""A tenant admin's own pages in the browser: settings, managing a user, an API token,
and the tenant's audit log showing what was done."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import first_admin_signs_in, make_tenant
from tests.factories import unique_slug

pytestmark = pytest.mark.browser


def test_admin_settings_user_token_and_audit_log(page, live_app, made_through_ui):
    slug = made_through_ui.tenant(unique_slug("bra"))
    member_email = f"member@{slug}.example"
    first_admin_signs_in(page, slug, make_tenant(live_app, slug, f"Admin {slug}", users=[(member_email, "member")]))
    nav = page.get_by_role("navigation")

    # Settings: a bad colour is shown beside its field and the rest kept; then saved.
    nav.get_by_role("link", name="Settings", exact=True).click()
    page.get_by_label("Name").fill("Renamed in the browser")
    page.get_by_label("Display colour").fill("red")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field.has-error")).to_contain_text("six hexadecimal digits")
    expect(page.get_by_label("Name")).to_have_value("Renamed in the browser")
    page.get_by_label("Display colour").fill("#2b8a3e")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("Settings saved.")
    expect(page.locator("header .brand")).to_have_text("Renamed in the browser")

    # A user disabled from their page.
    nav.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name=member_email).click()
    page.get_by_role("button", name="Disable").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{member_email}: disabled.")
    expect(page.locator("#users")).to_contain_text("disabled")

    # An API token: shown once, listed by name only, revoked.
    nav.get_by_role("link", name="API tokens", exact=True).click()
    page.get_by_label("Name").fill("deploy bot")
    page.get_by_label("Read orders").check()
    page.get_by_role("button", name="Make token").click()
    expect(page.locator("#api-token")).to_have_text(re.compile(r"^tp_[0-9a-f]{32}_[A-Za-z0-9_-]+$"))
    page.get_by_role("link", name="Back to tokens").click()
    row = page.locator("#tokens tbody tr", has_text="deploy bot")
    expect(row).to_contain_text("orders:read")
    page.once("dialog", lambda dialog: dialog.accept())  # it asks first (issue 14, item 3)
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#tokens tbody tr", has_text="deploy bot")).to_contain_text("revoked")

    # The tenant's own audit log shows what was done.
    nav.get_by_role("link", name="Audit log", exact=True).click()
    audit = page.locator("#audit")
    for action in ("tenant.settings_changed", "tenant_user.disable", "api_token.created", "api_token.revoked"):
        expect(audit).to_contain_text(action)


def test_admin_exports_the_data_and_asks_for_another_plan(page, live_app, made_through_ui):
    slug = made_through_ui.tenant(unique_slug("brx"))
    first_admin_signs_in(page, slug, make_tenant(live_app, slug, f"Export {slug}"))
    nav = page.get_by_role("navigation")

    # The export runs as a job on the live worker; the page follows it and offers the zip.
    nav.get_by_role("link", name="Your data", exact=True).click()
    page.get_by_role("button", name="Export now").click()
    download_link = page.get_by_role("link", name="Download the zip")
    expect(download_link).to_be_visible(timeout=30_000)
    with page.expect_download() as download:
        download_link.click()
    assert download.value.suggested_filename == f"{slug}-export.zip"

    # A plan change goes to staff for approval.
    nav.get_by_role("link", name="Plan", exact=True).click()
    page.get_by_label("Move to").select_option("professional")
    page.get_by_role("button", name="Ask for this plan").click()
    expect(page.locator(".flash-success")).to_contain_text("Your request is with our staff")
    expect(page.locator("main")).to_contain_text("basic → professional: pending")
