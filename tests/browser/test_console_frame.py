"""The frame of both faces, walked as every role would: each staff role and each tenant
role signs in, at 1366 px and at 390 px, and visits every page its sidebar offers.

On each page: no link of the navigation answers 403 (the sidebar shows only what the
role may open), the page is no wider than the window (tables scroll inside their own
box), the current page is marked, and axe-core finds no serious or critical violation.
axe-core is vendored for the tests only (tests/browser/vendor/README.md).
"""
import os
import re
import uuid

import pytest
from playwright.sync_api import expect

from portal.auth.services import create_staff_user
from portal.extensions import db
from tests.browser.helpers import make_tenant, staff_signs_in, user_signs_in
from tests.factories import PASSWORD, unique_slug

pytestmark = pytest.mark.browser

AXE = os.path.join(os.path.dirname(__file__), "vendor", "axe-core", "axe.min.js")
WIDTHS = {"wide": {"width": 1366, "height": 800}, "phone": {"width": 390, "height": 844}}
STAFF_ROLES = ("superadmin", "operator", "support", "viewer")
TENANT_ROLES = ("admin", "member", "viewer")


@pytest.fixture(scope="module")
def staff_accounts(live_app):
    accounts = {}
    with live_app.app_context():
        for role in STAFF_ROLES:
            email = f"walk-{role}-{uuid.uuid4().hex[:6]}@staff.example"
            create_staff_user(email, role, PASSWORD)
            accounts[role] = email
        db.session.remove()
    return accounts


@pytest.fixture(scope="module")
def walk_tenant(live_app):
    """An enterprise tenant (every feature on, so every link) with a user of each role."""
    slug = unique_slug("walk")
    make_tenant(live_app, slug, f"Walk {slug}", plan="enterprise",
                users=[(f"{role}@{slug}.example", role) for role in TENANT_ROLES])
    return slug


def sidebar_links(page):
    """The navigation's links, [(label, href)]; on a phone the menu is opened first."""
    toggle = page.locator("#menu-toggle")
    # The menu folds at 800 px and less (portal.css); asked of the viewport, not of the
    # button, which shows for a moment before the stylesheet applies.
    if page.viewport_size["width"] <= 800:
        # console.js wires the button at the end of the body: after a form's redirect the
        # URL changes before it has run (seen once, on a loaded machine: the click did nothing).
        page.wait_for_load_state()
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_visible()
    return [(a.inner_text().strip(), a.get_attribute("href")) for a in nav.get_by_role("link").all()]


def serious_violations(page):
    page.add_script_tag(path=AXE)
    results = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '));
    }""")
    return results


def page_overflow(page):
    """How many pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def walk(page, expected_home):
    links = sidebar_links(page)
    assert links, "the sidebar offers no link"
    problems = []
    for label, href in links:
        response = page.goto(href)
        status = response.status if response else None
        if status != 200:
            problems.append(f"{label} ({href}) answered {status}")
            continue
        if page_overflow(page) > 0:
            problems.append(f"{label} ({href}) is {page_overflow(page)} px wider than the window")
        current = page.locator('nav a[aria-current="page"]')
        if current.count() != 1 or current.get_attribute("href") != href:
            problems.append(f"{label} ({href}) is not marked as the current page")
        for violation in serious_violations(page):
            problems.append(f"{label} ({href}): {violation}")
    assert not problems, "\n".join(problems)
    assert any(href.rstrip("/").endswith(expected_home) for _, href in links)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("role", STAFF_ROLES)
def test_each_staff_role_walks_its_navigation(browser, base_url, staff_accounts, walk_tenant, role, width):
    context = browser.new_context(base_url=base_url, viewport=WIDTHS[width])
    page = context.new_page()
    try:
        page.goto("/admin/login")
        assert not serious_violations(page), "the sign-in page"
        assert page_overflow(page) <= 0
        page.get_by_label("Email").fill(staff_accounts[role])
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/admin/tenants$"))
        walk(page, "/admin/tenants")
        # A tenant's page too (it has no link of its own: the Tenants link is marked), each tab.
        page.goto(f"/admin/tenants?q={walk_tenant}")
        page.get_by_role("link", name=walk_tenant, exact=True).click()
        expect(page.locator('nav a[aria-current="page"]')).to_have_text("Tenants")
        tabs = page.get_by_role("tab")
        expect(tabs.first).to_have_text("Overview")  # console.js makes the tabs after load: wait for them
        names = [tab.inner_text() for tab in tabs.all()]
        assert names[:4] == ["Overview", "Plan and limits", "Domains", "Data"]
        assert ("Danger zone" in names) == (role in ("superadmin", "operator"))
        for name in names:
            page.get_by_role("tab", name=name).click()
            expect(page.get_by_role("tabpanel")).to_have_count(1)
            assert page_overflow(page) <= 0, name
            assert not serious_violations(page), name
        expect(page.locator(".signout .who")).to_contain_text(staff_accounts[role])
        expect(page.locator(".signout .role")).to_have_text(role)
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("role", TENANT_ROLES)
def test_each_tenant_role_walks_its_navigation(browser, base_url, walk_tenant, role, width):
    context = browser.new_context(base_url=base_url, viewport=WIDTHS[width])
    page = context.new_page()
    try:
        page.goto(f"/t/{walk_tenant}/login")
        assert not serious_violations(page), "the sign-in page"
        assert page_overflow(page) <= 0
        page.get_by_label("Email").fill(f"{role}@{walk_tenant}.example")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(rf"/t/{walk_tenant}/$"))
        walk(page, f"/t/{walk_tenant}")
    finally:
        context.close()


def test_the_sidebar_hides_what_a_role_cannot_open(browser, base_url, staff_accounts):
    """Support does not see Placements; a viewer does not see the Outbox (both 403)."""
    seen = {}
    for role in ("support", "viewer", "superadmin"):
        context = browser.new_context(base_url=base_url)
        page = context.new_page()
        staff_signs_in(page, staff_accounts[role], PASSWORD)
        seen[role] = {label for label, _ in sidebar_links(page)}
        context.close()
    assert "Placements" not in seen["support"] and "Outbox" in seen["support"]
    assert "Outbox" not in seen["viewer"] and "Placements" in seen["viewer"]
    assert {"Placements", "Outbox", "Plans", "Jobs", "Audit log"} <= seen["superadmin"]


def test_the_landing_page_sends_staff_to_the_console(page, base_url, staff_accounts):
    response = page.goto("/")
    assert response.status == 200
    expect(page.get_by_role("heading", name="Tenancy Portal")).to_be_visible()
    expect(page.locator("main")).to_contain_text("/t/")
    assert not serious_violations(page)
    page.get_by_role("link", name="Sign in to the staff console").click()
    page.get_by_label("Email").fill(staff_accounts["viewer"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/admin/tenants$"))
    page.goto("/")  # signed in: straight to the console
    expect(page).to_have_url(re.compile(r"/admin/tenants$"))


def test_flash_messages_pass_axe(browser, base_url, walk_tenant):
    """A success and an error message meet the contrast bar too (the walk sees none)."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    try:
        user_signs_in(page, walk_tenant, f"admin@{walk_tenant}.example", PASSWORD)
        page.goto(f"/t/{walk_tenant}/settings")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".flash-success")).to_be_visible()
        assert not serious_violations(page)
        page.goto(f"/t/{walk_tenant}/data")
        page.evaluate("""() => document.querySelector('main').insertAdjacentHTML('afterbegin',
            '<div class="flash flash-error" role="status">An error, as the pages show one.</div>')""")
        assert not serious_violations(page)
    finally:
        context.close()
