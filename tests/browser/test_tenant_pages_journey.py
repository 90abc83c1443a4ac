"""A tenant admin's remaining pages walked in the browser: orders, managing
a member from their page, a custom role from the matrix to its deletion, and a custom
domain from its claim to its verification (by a real, tiny DNS server) and removal."""
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.tenancy.context import TenantRef
from portal.tenancy.data import Order
from portal.tenancy.placement import tenant_transaction
from portal.tenants.services import get_tenant_by_slug
from tests.browser.helpers import first_admin_signs_in, make_tenant
from tests.dns_server import dns_answering
from tests.factories import unique_slug

pytestmark = pytest.mark.browser

NOT_FOUND = "There is nothing at this address."


def seed_orders(live_app, slug, orders):
    """Commit `orders` ((number, customer, amount_cents, created_at)) for tenant `slug`."""
    with live_app.app_context():
        try:
            tenant = get_tenant_by_slug(slug)
            with tenant_transaction(TenantRef.of(tenant)) as session:
                session.add_all(Order(tenant_id=tenant.id, number=number, customer=customer, amount_cents=cents,
                                      created_at=created_at) for number, customer, cents, created_at in orders)
        finally:
            db.session.remove()


@pytest.fixture()
def live_dns(live_app):
    """A real DNS server on 127.0.0.1 that the live app asks while the test runs."""
    with dns_answering(live_app) as server:
        yield server


def test_orders_list_and_an_order(page, live_app, made_through_ui):
    slug = made_through_ui.tenant(unique_slug("bro"))
    first_admin_signs_in(page, slug, make_tenant(live_app, slug, f"Orders {slug}", "professional"))
    # Around noon UTC: the same calendar day wherever the database's time zone is within 11 hours.
    recent = datetime.now(timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=2)
    earlier = recent - timedelta(days=3)
    seed_orders(live_app, slug, [(1001, "Ada Lovelace", 12_345, earlier),
                                 (1002, "Grace Hopper", 1_250_000, recent),
                                 (1003, "Edsger Dijkstra", 4_200, recent + timedelta(hours=1))])
    nav = page.get_by_role("navigation")

    nav.get_by_role("link", name="Orders", exact=True).click()
    orders = page.locator("#orders tbody tr")
    expect(orders).to_have_count(3)
    expect(orders.first).to_contain_text("Edsger Dijkstra")  # newest first
    expect(page.locator("#orders tbody tr", has_text="Grace Hopper")).to_contain_text("12,500.00")

    page.get_by_role("link", name="1002", exact=True).click()
    expect(page.get_by_role("heading", name="Order 1002")).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Grace Hopper")
    expect(facts).to_contain_text("12,500.00")
    expect(facts).to_contain_text("open")

    # An order number typed into the address bar that this tenant does not have.
    page.goto(f"/t/{slug}/orders/{uuid.uuid4()}")
    expect(page.locator("main")).to_contain_text(NOT_FOUND)
    page.go_back()


def test_admin_resets_disables_enables_and_removes_a_member(page, live_app, made_through_ui):
    slug = made_through_ui.tenant(unique_slug("bru"))
    member = f"member@{slug}.example"
    owner = f"owner@{slug}.example"
    first_admin_signs_in(page, slug, make_tenant(live_app, slug, f"Users {slug}", users=[(member, "member")]))
    nav = page.get_by_role("navigation")
    nav.get_by_role("link", name="Users", exact=True).click()
    users = page.locator("#users")

    page.get_by_role("link", name=member).click()
    expect(page.locator("#user-state")).to_have_text("active")
    page.get_by_role("button", name="Disable").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{member}: disabled.")
    expect(users.locator("tr", has_text=member)).to_contain_text("disabled")
    page.get_by_role("link", name=member).click()
    expect(page.locator("#user-state")).to_have_text("disabled")
    expect(page.get_by_role("button", name="Disable")).to_have_count(0)
    page.get_by_role("button", name="Enable").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{member}: enabled.")
    expect(users.locator("tr", has_text=member)).to_contain_text("active")

    # A reset stops the old password at once: the member is mailed a link (kept in the
    # outbox here) and shows as invited until they use it.
    page.get_by_role("link", name=member).click()
    page.get_by_role("button", name="Reset password").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{member}: new link sent.")
    expect(users.locator("tr", has_text=member)).to_contain_text("invited")
    page.get_by_role("link", name=member).click()
    expect(page.locator("#user-state")).to_contain_text("invited · link expires")
    expect(page.get_by_role("button", name="Resend invitation")).to_be_visible()
    expect(page.get_by_role("button", name="Reset password")).to_have_count(0)

    # Your own page offers nothing to do to yourself (the service refuses it besides).
    nav.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name=owner).click()
    expect(page.locator("dl.facts")).to_contain_text(owner)
    for button in ("Change role", "Disable", "Reset password", "Remove"):
        expect(page.get_by_role("button", name=button)).to_have_count(0)

    nav.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name=member).click()
    page.once("dialog", lambda dialog: dialog.accept())  # it asks first (issue 14, item 3)
    page.get_by_role("button", name="Remove").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{member}: removed.")
    expect(users).not_to_contain_text(member)
    expect(users).to_contain_text(owner)

    # Back to the removed member's page, as a person pressing Back would: it is gone.
    page.go_back()
    page.reload()
    expect(page.locator("main")).to_contain_text(NOT_FOUND)


def test_admin_edits_and_deletes_a_custom_role(page, live_app, made_through_ui):
    slug = made_through_ui.tenant(unique_slug("brl"))
    clerk = f"clerk@{slug}.example"
    first_admin_signs_in(page, slug, make_tenant(live_app, slug, f"Role edits {slug}", "enterprise",
                                                 users=[(clerk, "member")]))
    nav = page.get_by_role("navigation")

    nav.get_by_role("link", name="Roles", exact=True).click()
    page.get_by_role("link", name="New role").click()
    page.get_by_label("Name").fill("Packer")
    page.get_by_label("orders.view", exact=True).check()
    page.get_by_role("button", name="Create role").click()
    expect(page.locator(".flash-success")).to_contain_text("Role Packer created.")

    # The clerk holds it: the role cannot be deleted yet.
    nav.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name=clerk).click()
    page.get_by_label("Role").select_option(label="Packer")
    page.get_by_role("button", name="Change role").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{clerk}: role changed.")

    # Opened from the roles list; every permission unticked is refused beside the matrix.
    nav.get_by_role("link", name="Roles", exact=True).click()
    expect(page.locator("tr[id^='role-r-'] td").nth(1)).to_have_text("1")
    page.locator("#roles").get_by_role("link", name="Packer", exact=True).click()
    expect(page.get_by_role("heading", name="Packer")).to_be_visible()
    expect(page.get_by_label("orders.view", exact=True)).to_be_checked()
    page.get_by_label("orders.view", exact=True).uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#permissions-error")).to_have_text("Choose at least one permission.")
    expect(page.locator(".field.has-error #permission-matrix")).to_be_visible()
    expect(page.locator("#permission-matrix input:checked")).to_have_count(0)  # as submitted
    expect(page.get_by_label("Name")).to_have_value("Packer")

    for permission in ("orders.view", "analytics.view"):
        page.get_by_label(permission, exact=True).check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("Role Packer saved.")
    granted = page.locator("tr[id^='role-r-'] td.yes")
    expect(granted).to_have_count(2)
    expect(page.locator("tr[id^='role-r-'] td.yes[title='analytics.view']")).to_have_count(1)
    page.locator("tr[id^='role-r-']").get_by_role("link", name="Packer").click()
    expect(page.get_by_label("analytics.view", exact=True)).to_be_checked()
    page.get_by_role("link", name="Cancel").click()

    page.once("dialog", lambda dialog: dialog.accept())  # it asks first (issue 14, item 3)
    page.locator("tr[id^='role-r-']").get_by_role("button", name="Delete").click()
    expect(page.locator(".flash-error")).to_contain_text("1 user holds this role: give them another role first.")
    expect(page.locator("tr[id^='role-r-']")).to_be_visible()

    nav.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name=clerk).click()
    page.get_by_label("Role").select_option("member")
    page.get_by_role("button", name="Change role").click()
    expect(page.locator("#users tr", has_text=clerk)).to_contain_text("member")

    nav.get_by_role("link", name="Roles", exact=True).click()
    page.once("dialog", lambda dialog: dialog.accept())  # it asks first (issue 14, item 3)
    page.locator("tr[id^='role-r-']").get_by_role("button", name="Delete").click()
    expect(page.locator(".flash-success")).to_contain_text("Role deleted.")
    expect(page.locator("tr[id^='role-r-']")).to_have_count(0)


def test_admin_adds_verifies_and_removes_a_custom_domain(page, live_app, live_dns, made_through_ui):
    slug = made_through_ui.tenant(unique_slug("brd"))
    domain = f"shop.{slug}.customer-example.com"
    record = f"_tenancy-portal.{domain}"
    first_admin_signs_in(page, slug, make_tenant(live_app, slug, f"Domains {slug}", "professional"))

    page.get_by_role("navigation").get_by_role("link", name="Settings", exact=True).click()
    page.get_by_role("link", name="Custom domains →").click()
    expect(page.locator("#domains")).to_contain_text("No custom domains yet.")

    # Bad names are refused beside the field, the text kept.
    for bad, message in (("http://x", "without http://"), ("not a domain", "Enter a domain name such as")):
        page.get_by_label("Domain").fill(bad)
        page.get_by_role("button", name="Add domain").click()
        expect(page.locator(".field.has-error")).to_contain_text(message)
        expect(page.get_by_label("Domain")).to_have_value(bad)

    page.get_by_label("Domain").fill(domain)
    page.get_by_role("button", name="Add domain").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{domain} added: create its TXT record")
    row = page.locator("#domains tbody tr", has_text=domain)
    expect(row).to_contain_text("pending")
    expect(row.locator("code").nth(1)).to_have_text(record)
    value = row.locator("code").nth(2)
    expect(value).to_have_text(re.compile(r"^tenancy-portal-verification=[0-9a-f]{32}$"))

    # Verify before the record exists: the DNS server answers NXDOMAIN.
    row.get_by_role("button", name="Verify").click()
    expect(page.locator(".flash-error")).to_contain_text(
        f"{domain} is not verified yet: no TXT record found at {record}.")
    expect(row).to_contain_text("pending")
    expect(row.locator(".error")).to_have_text(f"no TXT record found at {record}")
    assert record in live_dns.queries

    # The record created at the "DNS provider": now it verifies.
    live_dns.records[record] = [value.inner_text()]
    row.get_by_role("button", name="Verify").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{domain} is verified: it now leads to your pages.")
    expect(row.locator(".badge")).to_have_text("verified")
    expect(row.get_by_role("button", name="Verify")).to_have_count(0)

    row.get_by_role("button", name="Remove").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{domain} removed")
    expect(page.locator("#domains")).not_to_contain_text(domain)
    expect(page.locator("#domains")).to_contain_text("No custom domains yet.")
