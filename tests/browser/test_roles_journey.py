"""A tenant admin defines a custom role on the permission matrix, gives it to a user,
and that user sees exactly what the role allows."""
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import first_admin_signs_in, make_tenant
from tests.factories import PASSWORD, unique_slug

pytestmark = pytest.mark.browser


def test_admin_makes_a_role_and_its_holder_sees_what_it_allows(page, browser, base_url, live_app,
                                                               made_through_ui):
    slug = made_through_ui.tenant(unique_slug("brr"))
    clerk_email = f"clerk@{slug}.example"
    token = make_tenant(live_app, slug, f"Roles {slug}", "enterprise", users=[(clerk_email, "member")])
    first_admin_signs_in(page, slug, token)

    page.get_by_role("navigation").get_by_role("link", name="Roles", exact=True).click()
    expect(page.locator("#role-viewer")).to_be_visible()
    page.get_by_role("link", name="New role").click()
    page.get_by_label("Name").fill("Admin")  # a built-in's name: refused beside the field
    for permission in ("orders.view", "audit.view"):
        page.get_by_label(permission, exact=True).check()
    page.get_by_role("button", name="Create role").click()
    expect(page.locator(".field.has-error")).to_contain_text("admin is a built-in role")
    expect(page.get_by_label("audit.view", exact=True)).to_be_checked()  # the choice is kept
    page.get_by_label("Name").fill("Order desk")
    page.get_by_role("button", name="Create role").click()
    expect(page.locator(".flash-success")).to_contain_text("Role Order desk created.")
    expect(page.locator("tr[id^='role-r-']")).to_contain_text("Order desk")  # its key is the portal's

    page.get_by_role("navigation").get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name=clerk_email).click()
    page.get_by_label("Role").select_option(label="Order desk")
    page.get_by_role("button", name="Change role").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{clerk_email}: role changed.")

    context = browser.new_context(base_url=base_url)
    clerk = context.new_page()
    clerk.goto(f"/t/{slug}/login")
    clerk.get_by_label("Email").fill(clerk_email)
    clerk.get_by_label("Password").fill(PASSWORD)
    clerk.get_by_role("button", name="Sign in").click()
    nav = clerk.get_by_role("navigation")
    expect(nav.get_by_role("link", name="Audit log")).to_be_visible()
    expect(nav.get_by_role("link", name="Orders")).to_be_visible()
    expect(nav.get_by_role("link", name="Settings")).to_have_count(0)
    expect(nav.get_by_role("link", name="Users")).to_have_count(0)
    clerk.goto(f"/t/{slug}/settings")
    expect(clerk.locator("main")).to_contain_text("Your role (Order desk) may not view settings.")
    context.close()
