"""A move, in Chromium: staff move a pool tenant to a silo on the second server while its
admin has the orders page open; the admin adds an order after the switch and sees every
earlier one; the tenant's audit log shows the move."""

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.lifecycle import placements
from portal.tenants.services import get_tenant_by_slug
from tests.browser.helpers import first_admin_signs_in, make_tenant
from tests.browser.test_journeys import sign_in_staff
from tests.conftest import SECOND_SERVER_ENV
from tests.factories import unique_slug

pytestmark = pytest.mark.browser


@pytest.fixture()
def second_placement(live_app, made_through_ui):
    with live_app.app_context():
        name = made_through_ui.placement(f"second-{unique_slug('pl')[-6:]}")
        placements.register(name, SECOND_SERVER_ENV, 10, actor=("system", None, "test"))
        db.session.remove()
    return name


def test_staff_move_a_tenant_while_its_admin_works(browser, base_url, live_app, staff_user, made_through_ui,
                                                    second_placement):
    slug = made_through_ui.tenant(unique_slug("brmv"))
    token = make_tenant(live_app, slug, f"Moving {slug}", "professional")
    admin_context = browser.new_context(base_url=base_url)
    admin = admin_context.new_page()
    admin.set_default_timeout(15_000)
    first_admin_signs_in(admin, slug, token)
    for customer in ("Before One", "Before Two"):
        admin.goto(f"/t/{slug}/orders/new")
        admin.get_by_label("Customer").fill(customer)
        admin.get_by_label("Amount").fill("10")
        admin.get_by_role("button", name="Add the order").click()
        expect(admin.locator(".flash-success")).to_contain_text("added")
    admin.goto(f"/t/{slug}/orders")  # the admin's page stays open through the move

    staff = browser.new_context(base_url=base_url).new_page()
    staff.set_default_timeout(15_000)
    sign_in_staff(staff, staff_user)
    with live_app.app_context():
        tenant_id = get_tenant_by_slug(slug).id
        db.session.remove()
    staff.goto(f"/admin/tenants/{tenant_id}")
    staff.locator("#move-link").click()
    expect(staff.get_by_role("heading", name="What moves")).to_be_visible()
    staff.get_by_label("Move to").select_option("silo")
    staff.get_by_label("Server (silo only)").select_option(label=f"{second_placement} (0 of 10)")
    staff.get_by_role("button", name="Move").click()
    # The page follows the move live, phase by phase, to its switch.
    expect(staff.locator(".badge-move-switched")).to_be_visible(timeout=60_000)
    expect(staff.locator("#freeze-ms")).to_contain_text("ms")
    expect(staff.locator("#move-figures")).to_contain_text("counts and checksums equal")

    # The admin, still signed in, adds an order after the switch and sees every earlier one.
    admin.get_by_role("link", name="New order").click()
    admin.get_by_label("Customer").fill("After The Move")
    admin.get_by_label("Amount").fill("20")
    admin.get_by_role("button", name="Add the order").click()
    expect(admin.locator(".flash-success")).to_contain_text("added")
    admin.get_by_role("navigation").get_by_role("link", name="Orders", exact=True).click()
    orders = admin.locator("#orders tbody")
    for customer in ("Before One", "Before Two", "After The Move"):
        expect(orders).to_contain_text(customer)
    admin.get_by_role("navigation").get_by_role("link", name="Audit log", exact=True).click()
    expect(admin.locator("#audit")).to_contain_text("tenant.moved")
    staff.goto(f"/admin/tenants/{tenant_id}")
    expect(staff.locator("dl.facts dt:text-is('Tier') + dd")).to_contain_text(f"silo on {second_placement}")
    admin_context.close()
