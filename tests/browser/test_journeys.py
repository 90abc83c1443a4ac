"""Each user's main journey, in Chromium: staff creating a tenant, the tenant's first
admin setting a password and adding a user, and bad input shown beside its field."""
import os
import re
import tempfile

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import ADMIN_PASSWORD, staff_signs_in
from tests.factories import unique_slug

pytestmark = pytest.mark.browser

SCREENSHOT = os.path.join(tempfile.gettempdir(), "browser-home.png")


def sign_in_staff(page, staff_user):
    email, password = staff_user
    staff_signs_in(page, email, password)
    expect(page.locator("header")).to_contain_text(email)


def open_new_tenant_form(page):
    page.get_by_role("link", name="New tenant").click()
    expect(page).to_have_url(re.compile(r"/admin/tenants/new$"))
    expect(page.get_by_role("heading", name="New tenant")).to_be_visible()


def create_tenant_via_ui(page, staff_user):
    """Staff signs in and creates a tenant; returns (slug, admin email, set-password path)."""
    slug = unique_slug("br")
    admin_email = f"owner@{slug}.example"
    sign_in_staff(page, staff_user)
    open_new_tenant_form(page)
    page.get_by_label("Slug").fill(slug)
    page.get_by_label("Name").fill(f"Browser {slug}")
    page.get_by_label("Plan").select_option("professional")
    page.get_by_label("First admin's email").fill(admin_email)
    page.get_by_role("button", name="Create tenant").click()

    # The tenant page follows the provisioning job live; the first admin's invitation waits
    # in the outbox (no mail server here), where a superadmin opens it to pass the link on.
    expect(page).to_have_url(re.compile(r"/admin/tenants/[0-9a-f-]{36}$"))
    expect(page.locator("#invitation-state")).to_contain_text("waits in the outbox", timeout=30_000)
    expect(page.locator("h1 .badge")).to_have_text("active")
    page.locator("#invitation-message").click()
    expect(page.locator("#message-to")).to_have_text(admin_email)
    body = page.locator("#message-body").inner_text()
    link = re.search(rf"https?://[^/\s]+(/t/{re.escape(slug)}/set-password/[A-Za-z0-9_-]+)", body)
    assert link, body
    return slug, admin_email, link.group(1)


def test_staff_creates_a_tenant_and_finds_it(page, staff_user):
    slug, _email, _link = create_tenant_via_ui(page, staff_user)

    page.goto("/admin/tenants")
    page.get_by_role("searchbox", name="Search").fill(slug)
    page.get_by_role("button", name="Filter").click()

    expect(page).to_have_url(re.compile(rf"[?&]q={re.escape(slug)}(&|$)"))
    rows = page.locator("#tenants tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_role("link", name=slug)).to_be_visible()
    expect(rows.first).to_contain_text(f"Browser {slug}")
    expect(rows.first).to_contain_text("active")
    expect(rows.first).to_contain_text("professional")


def test_first_admin_sets_password_and_adds_a_user(page, new_context, staff_user):
    slug, admin_email, link = create_tenant_via_ui(page, staff_user)

    # The admin opens the link in their own browser: nothing shared with the staff's.
    admin_page = new_context().new_page()
    admin_page.goto(link)
    expect(admin_page.get_by_role("heading", name="Set your password")).to_be_visible()
    expect(admin_page.locator("main")).to_contain_text(admin_email)
    admin_page.get_by_label("New password").fill(ADMIN_PASSWORD)
    admin_page.get_by_label("Repeat the password").fill(ADMIN_PASSWORD)
    admin_page.get_by_role("button", name="Set password").click()

    expect(admin_page).to_have_url(re.compile(rf"/t/{re.escape(slug)}/$"))
    expect(admin_page.get_by_role("status")).to_contain_text("Your password is set")
    expect(admin_page.get_by_role("heading", name="Plan: Professional")).to_be_visible()
    expect(admin_page.locator("#usage")).to_contain_text("Users: 1 of 100")
    expect(admin_page.locator("header .who")).to_contain_text(admin_email)
    expect(admin_page.locator("header .role")).to_have_text("admin")

    # Users → Invite user (with no SMTP server configured, the mail goes to the outbox).
    admin_page.get_by_role("navigation").get_by_role("link", name="Users").click()
    expect(admin_page).to_have_url(re.compile(rf"/t/{re.escape(slug)}/users$"))
    expect(admin_page.locator("#users")).to_contain_text(admin_email)
    admin_page.get_by_role("link", name="Invite user").click()

    member_email = f"member@{slug}.example"
    admin_page.get_by_label("Email").fill(member_email)
    admin_page.get_by_label("Name").fill("Mira Member")
    admin_page.get_by_label("Role").select_option("member")
    admin_page.get_by_role("button", name="Invite user").click()

    expect(admin_page.get_by_role("heading", name=f"Invitation sent to {member_email}")).to_be_visible()
    expect(admin_page.locator("main")).not_to_contain_text("/set-password/")  # the link goes by mail only

    admin_page.get_by_role("link", name="Back to users").click()
    users = admin_page.locator("#users")
    member_row = users.locator("tbody tr", has_text=member_email)
    expect(member_row).to_have_count(1)
    expect(member_row).to_contain_text("Mira Member")
    expect(member_row).to_contain_text("member")
    expect(member_row).to_contain_text("invited")
    expect(users.locator("tbody tr")).to_have_count(2)

    # The home page, now with two users, for a look at the rendering.
    admin_page.get_by_role("navigation").get_by_role("link", name="Home").click()
    expect(admin_page.locator("#usage")).to_contain_text("Users: 2 of 100")
    admin_page.screenshot(path=SCREENSHOT, full_page=True)


def test_bad_slug_is_shown_beside_its_field(page, staff_user):
    sign_in_staff(page, staff_user)
    open_new_tenant_form(page)
    page.get_by_label("Slug").fill("Bad Slug!")
    page.get_by_label("Name").fill("Kept Name Ltd")
    page.get_by_label("First admin's email").fill("owner@kept.example")
    page.get_by_role("button", name="Create tenant").click()

    slug_field = page.locator(".field", has=page.locator("#slug"))
    expect(slug_field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(slug_field.locator(".error")).to_have_count(1)
    expect(slug_field.locator(".error")).to_contain_text("lower-case letters")
    expect(page.locator("#slug")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#slug")).to_have_value("Bad Slug!")
    expect(page.get_by_label("Name")).to_have_value("Kept Name Ltd")
    expect(page.get_by_label("First admin's email")).to_have_value("owner@kept.example")
    # Only the slug is wrong.
    expect(page.locator(".field.has-error")).to_have_count(1)
    expect(page.get_by_role("heading", name="New tenant")).to_be_visible()


def test_staff_watch_a_failed_provisioning_roll_back_and_discard_it(page, staff_user):
    """The live worker fails tenants whose slug starts with "brfail-" at their database
    role step (tests/browser/conftest.py): the page follows the job, shows the steps
    undone and the failure, and staff discard the tenant."""
    slug = unique_slug("brfail")
    sign_in_staff(page, staff_user)
    open_new_tenant_form(page)
    page.get_by_label("Slug").fill(slug)
    page.get_by_label("Name").fill(f"Failing {slug}")
    page.get_by_label("Plan").select_option("professional")  # a bridge tenant: storage to undo
    page.get_by_label("First admin's email").fill(f"owner@{slug}.example")
    page.get_by_role("button", name="Create tenant").click()

    expect(page).to_have_url(re.compile(r"/admin/tenants/[0-9a-f-]{36}$"))
    failure = page.locator("#failure")
    expect(failure).to_contain_text("database role", timeout=30_000)
    expect(failure).to_contain_text("fault injected")
    expect(page.locator("h1 .badge")).to_have_text("failed")
    steps = page.locator(".steps")
    expect(steps.locator('[data-step="storage"]')).to_contain_text("undone")
    expect(steps.locator('[data-step="database role"]')).to_contain_text("failed, undone")
    expect(steps.locator('[data-step="limits"]')).to_contain_text("pending")
    expect(page.get_by_role("button", name="Retry")).to_be_visible()

    page.get_by_role("tab", name="Danger zone").click()
    page.once("dialog", lambda dialog: dialog.accept())  # discarding asks first
    page.get_by_role("button", name="Discard tenant").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Tenant {slug} discarded.")
    page.goto(f"/admin/tenants?q={slug}")
    expect(page.locator("#tenants tbody")).to_contain_text("No tenant matches.")
