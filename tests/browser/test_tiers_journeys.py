"""Tiers in the staff console, in Chromium: a superadmin registers a placement (the second
PostgreSQL server), creates a bridge and a silo tenant and reads where their data lives,
and upgrades a tenant that is behind from the Upgrades page.

Bridge and silo tenants made here have real schemas, databases and roles (on the live
server's commits); `made_through_ui` drops them, and the placements, after each test.
"""
import re
import time
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from portal.dbsetup import tenant_head
from portal.extensions import db
from portal.models import Tenant
from tests.browser.test_journeys import open_new_tenant_form, sign_in_staff
from tests.conftest import SECOND_SERVER_ENV
from tests.factories import unique_slug

pytestmark = pytest.mark.browser

POLL_SECONDS = 15


@pytest.fixture(autouse=True)
def _fail_fast(page):
    # An action that cannot happen fails in 10 s, not Playwright's default 30 s.
    page.set_default_timeout(10_000)


def fact(page, term):
    """The value beside `term` in the tenant page's Registry facts."""
    return page.locator(f"dl.facts dt:text-is('{term}') + dd")


def open_placements(page):
    page.get_by_role("navigation").get_by_role("link", name="Placements").click()
    expect(page).to_have_url(re.compile(r"/admin/placements$"))
    expect(page.get_by_role("heading", name="Placements", exact=True)).to_be_visible()


def fill_placement_form(page, name, url_env, capacity):
    page.get_by_label("Name").fill(name)
    page.get_by_label("Environment variable with the owner URL").fill(url_env)
    page.get_by_label("Capacity (silo tenants)").fill(str(capacity))
    page.get_by_role("button", name="Register").click()


def register_placement_via_ui(page, made):
    """From the Placements page: the second server as a placement of capacity 5; its name."""
    name = made.placement(f"second-{uuid.uuid4().hex[:8]}")
    open_placements(page)
    fill_placement_form(page, name, SECOND_SERVER_ENV, 5)
    expect(page).to_have_url(re.compile(r"/admin/placements$"))
    expect(page.get_by_role("status")).to_contain_text(f"Placement {name} registered.")
    row = page.locator("#placements tbody tr", has_text=name)
    expect(row).to_have_count(1)
    # name, where its URL is, tenants, capacity, their size, and no Drain while it is empty
    expect(row.locator("td")).to_have_text([name, f"${SECOND_SERVER_ENV}", "0", "5", "0.0 MB", ""])
    return name


def create_tiered_tenant_via_ui(page, made, tier, placement=None):
    """New tenant → tier (and placement) → Create → Open its page; returns (slug, id)."""
    slug = made.tenant(unique_slug(f"br{tier[:2]}"))
    page.get_by_role("navigation").get_by_role("link", name="Tenants").click()
    open_new_tenant_form(page)
    page.get_by_label("Slug").fill(slug)
    page.get_by_label("Name").fill(f"Browser {slug}")
    page.get_by_label("Plan").select_option("professional")
    page.get_by_label("Tier", exact=True).select_option(tier)
    if placement:
        # The option's label also counts the placement's tenants: choose it by its name.
        option = page.locator("#placement option", has_text=f"{placement} (")
        expect(option).to_have_count(1)
        page.get_by_label("Placement (silo only)").select_option(option.get_attribute("value"))
    page.get_by_label("First admin's email").fill(f"owner@{slug}.example")
    page.get_by_role("button", name="Create tenant").click()

    # Either a "ready" page linking to the tenant, or straight to the tenant's page.
    ready = page.get_by_role("heading", name=f"Browser {slug} is ready")
    expect(ready.or_(page.locator("#registry-facts"))).to_be_visible()
    if ready.is_visible():
        page.get_by_role("link", name=f"Open {slug}").click()
    expect(page).to_have_url(re.compile(r"/admin/tenants/[0-9a-f-]{36}$"))
    expect(fact(page, "Slug")).to_have_text(slug)
    # Provisioning may finish after the request (a job): reload until the tenant is active.
    reload_until(page, lambda timeout: expect(page.locator("h1 .badge")).to_have_text("active", timeout=timeout))
    tenant_id = uuid.UUID(fact(page, "Id").inner_text().strip())
    return slug, tenant_id


def expect_storage_facts(page, tier, where):
    expect(fact(page, "Tier")).to_have_text(re.compile(rf"^{tier}\b"))  # (then the Move… link)
    expect(fact(page, "Storage")).to_have_text(where)
    expect(fact(page, "Data size")).to_have_text(re.compile(r"^\d+\.\d\d MB$"))
    expect(fact(page, "Schema version")).to_have_text(tenant_head())


def reload_until(page, check, seconds=POLL_SECONDS):
    """Until `check(timeout_ms)` passes on `page`, reload it; the last failure after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check(250)
            return
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        page.wait_for_timeout(200)
        page.reload()


def test_superadmin_registers_a_placement_and_bad_input_is_shown(page, staff_user, second_server,
                                                                  made_through_ui):
    sign_in_staff(page, staff_user)
    register_placement_via_ui(page, made_through_ui)

    # An environment variable this server does not have: refused beside its field.
    kept = made_through_ui.placement(f"kept-{uuid.uuid4().hex[:8]}")
    fill_placement_form(page, kept, "NOT_SET_X", 5)
    url_env_field = page.locator(".field", has=page.locator("#url_env"))
    expect(url_env_field).to_have_class(re.compile(r"\bhas-error\b"))
    expect(url_env_field.locator(".error")).to_have_text(
        "The environment variable NOT_SET_X is not set on this server.")
    expect(page.locator("#url_env")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#url_env")).to_have_value("NOT_SET_X")
    expect(page.locator("#name")).to_have_value(kept)
    expect(page.locator("#capacity")).to_have_value("5")
    expect(page.locator(".field.has-error")).to_have_count(1)
    expect(page.locator("#placements")).not_to_contain_text(kept)


def test_superadmin_creates_bridge_and_silo_tenants_and_sees_their_storage(page, staff_user, second_server,
                                                                           made_through_ui):
    sign_in_staff(page, staff_user)
    placement = register_placement_via_ui(page, made_through_ui)

    _slug, bridge_id = create_tiered_tenant_via_ui(page, made_through_ui, "bridge")
    expect_storage_facts(page, "bridge", re.compile(rf"^schema t_{bridge_id.hex}, role \S+{bridge_id.hex}$"))

    _slug, silo_id = create_tiered_tenant_via_ui(page, made_through_ui, "silo", placement)
    expect_storage_facts(
        page, "silo", re.compile(rf"^database \S+{silo_id.hex} on {re.escape(placement)}, role \S+{silo_id.hex}$"))

    # The placement now counts its tenant.
    open_placements(page)
    expect(page.locator("#placements tbody tr", has_text=placement).locator("td").nth(2)).to_have_text("1")


def test_superadmin_upgrades_a_tenant_that_is_behind(page, staff_user, live_app, made_through_ui):
    email, _password = staff_user
    sign_in_staff(page, staff_user)
    slug, tenant_id = create_tiered_tenant_via_ui(page, made_through_ui, "bridge")
    with live_app.app_context():
        db.session.execute(update(Tenant).where(Tenant.id == tenant_id).values(schema_version=None))
        db.session.commit()
        db.session.remove()

    page.get_by_role("navigation").get_by_role("link", name="Upgrades").click()
    expect(page).to_have_url(re.compile(r"/admin/upgrades$"))
    behind_row = page.locator("#behind tbody tr", has_text=slug)
    expect(behind_row).to_have_count(1)
    expect(behind_row.locator("td")).to_have_text([slug, "bridge", "unknown"])

    page.get_by_role("button", name="Upgrade all behind").click()
    expect(page).to_have_url(re.compile(r"/admin/upgrades$"))
    expect(page.get_by_role("status")).to_contain_text("Upgrade started")

    runs_by_me = page.locator("#runs tbody tr", has_text=email)

    def upgraded(timeout):
        expect(page.locator("#behind")).not_to_contain_text(slug, timeout=timeout)
        expect(runs_by_me.first.locator("td").nth(2)).to_have_text("done", timeout=timeout)

    reload_until(page, upgraded)
    expect(runs_by_me).to_have_count(1)
    expect(runs_by_me.first.locator("td").nth(4)).to_have_text("0")  # failed
    expect(page.locator("#running")).to_have_count(0)

    # The tenant's page has its version back, with no "behind" badge.
    page.goto(f"/admin/tenants/{tenant_id}")
    expect(fact(page, "Schema version")).to_have_text(tenant_head())
