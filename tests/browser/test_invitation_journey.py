"""An invitation in the browser: a tenant admin invites a user, staff find the mail in the
outbox (no SMTP server here), and the invitee sets a password through the link and signs in."""
import re

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.lifecycle.provisioning import create_tenant
from tests.browser.test_journeys import ADMIN_PASSWORD, sign_in_staff
from tests.factories import unique_slug

pytestmark = pytest.mark.browser

INVITEE_PASSWORD = "an invited user's passphrase"


def test_admin_invites_and_the_invitee_joins(page, new_context, live_app, staff_user, made_through_ui):
    slug = made_through_ui.tenant(unique_slug("bri"))
    invitee = f"invitee@{slug}.example"
    with live_app.app_context():
        try:
            _, token = create_tenant(slug, f"Invite {slug}", "basic", f"owner@{slug}.example", tier="pool")
        finally:
            db.session.remove()
    page.goto(f"/t/{slug}/set-password/{token}")
    page.get_by_label("New password").fill(ADMIN_PASSWORD)
    page.get_by_label("Repeat the password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Set password").click()

    # The admin invites; the page says where the mail went, not what the link is.
    page.get_by_role("navigation").get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name="Invite user").click()
    page.get_by_label("Email").fill(invitee)
    page.get_by_label("Name").fill("Ivy Invitee")
    page.get_by_label("Role").select_option("member")
    page.get_by_role("button", name="Invite user").click()
    expect(page.get_by_role("heading", name=f"Invitation sent to {invitee}")).to_be_visible()
    expect(page.locator("#outbox-note")).to_contain_text("in the portal's outbox")
    expect(page.locator("main")).not_to_contain_text("/set-password/")
    page.get_by_role("link", name="Back to users").click()
    row = page.locator("#users tbody tr", has_text=invitee)
    expect(row).to_contain_text("invited")
    expect(row).to_contain_text("link expires")

    # Staff read the invitation in the outbox.
    staff = new_context().new_page()
    sign_in_staff(staff, staff_user)
    staff.get_by_role("navigation").get_by_role("link", name="Outbox").click()
    staff.get_by_label("Recipient").fill(invitee)
    staff.get_by_role("button", name="Filter").click()
    staff.get_by_role("link", name=f"You are invited to Invite {slug}").click()
    expect(staff.locator("#message-to")).to_have_text(invitee)
    link = re.search(r"https?://\S+/set-password/[A-Za-z0-9_-]+", staff.locator("#message-body").inner_text()).group(0)

    # The invitee, in a browser of their own: a weak password first, then a good one.
    guest = new_context().new_page()
    guest.goto(link)
    expect(guest.get_by_role("heading", name="Set your password")).to_be_visible()
    expect(guest.locator("main")).to_contain_text(invitee)
    guest.get_by_label("New password").fill("short")
    guest.get_by_label("Repeat the password").fill("short")
    guest.get_by_role("button", name="Set password").click()
    expect(guest.locator("#password-error")).to_have_text("Use at least 12 characters.")
    guest.get_by_label("New password").fill(INVITEE_PASSWORD)
    guest.get_by_label("Repeat the password").fill(INVITEE_PASSWORD)
    guest.get_by_role("button", name="Set password").click()
    expect(guest).to_have_url(re.compile(rf"/t/{re.escape(slug)}/$"))
    expect(guest.get_by_role("status")).to_contain_text("Your password is set")
    expect(guest.locator("header .who")).to_contain_text(invitee)
    expect(guest.locator("header .role")).to_have_text("member")

    # Signed out, and in again with the new password.
    guest.get_by_role("button", name="Sign out").click()
    expect(guest.get_by_role("heading", name="Sign in")).to_be_visible()
    guest.get_by_label("Email").fill(invitee)
    guest.get_by_label("Password").fill(INVITEE_PASSWORD)
    guest.get_by_role("button", name="Sign in").click()
    expect(guest).to_have_url(re.compile(rf"/t/{re.escape(slug)}/$"))
    expect(guest.locator("header .who")).to_contain_text(invitee)
    expect(guest.locator("header .role")).to_have_text("member")

    # The link has done its work.
    guest.goto(link)
    expect(guest.locator("#link-state")).to_contain_text("This link has already been used.")
    page.reload()
    expect(page.locator("#users tbody tr", has_text=invitee)).to_contain_text("active")
