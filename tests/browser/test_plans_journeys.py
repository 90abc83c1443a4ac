"""Plans and usage in Chromium: a superadmin edits the feature matrix (a feature ticked, a
limit changed, kept after a reload; a bad value refused with the other input kept), and a
tenant admin reads the Usage page's bars.

The plans are shared by every browser test of the run (one database): what the matrix
test changes it puts back through the page, and a fixture puts the plans' rows back
after the test whatever happened.
"""
import re
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.extensions import db
from portal.lifecycle.provisioning import create_tenant
from portal.models import Plan
from portal.services.passwords import hash_password
from portal.tenancy.context import TenantRef
from portal.tenancy.data import TenantUser
from portal.tenancy.placement import tenant_transaction
from tests.browser.helpers import first_admin_signs_in
from tests.browser.test_journeys import sign_in_staff
from tests.factories import PASSWORD, unique_slug

pytestmark = pytest.mark.browser

PLAN_COLUMNS = ("name", "max_users", "storage_mb", "api_calls_per_day", "requests_per_minute", "db_connections",
                "statement_timeout_ms", "features", "default_tier", "is_retired")


@pytest.fixture(autouse=True)
def _fail_fast(page):
    # An action that cannot happen fails in 10 s, not Playwright's default 30 s.
    page.set_default_timeout(10_000)


@pytest.fixture()
def plans_restored(live_app):
    """The plans as they were before the test, put back after it (also on failure)."""
    with live_app.app_context():
        before = {p.code: {c: getattr(p, c) for c in PLAN_COLUMNS}
                  for p in db.session.execute(select(Plan)).scalars()}
        db.session.remove()
    yield before
    with live_app.app_context():
        try:
            for plan in db.session.execute(select(Plan)).scalars():
                if plan.code in before:
                    for column, value in before[plan.code].items():
                        if getattr(plan, column) != value:
                            setattr(plan, column, value)
            db.session.commit()
        finally:
            db.session.remove()
    live_app.extensions["portal.entitlements"].forget()  # the live server runs in this process


def open_plans(page):
    page.get_by_role("navigation").get_by_role("link", name="Plans", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/plans$"))
    expect(page.get_by_role("heading", name="Plans and features")).to_be_visible()


def save_matrix(page):
    page.get_by_role("button", name="Save the matrix").click()
    expect(page).to_have_url(re.compile(r"/admin/plans$"))


def test_superadmin_edits_the_feature_matrix(page, staff_user, plans_restored):
    basic = plans_restored["basic"]
    had_analytics = bool(basic["features"].get("analytics"))
    api_calls, storage = basic["api_calls_per_day"], basic["storage_mb"]
    professional_api_calls = plans_restored["professional"]["api_calls_per_day"]

    sign_in_staff(page, staff_user)
    open_plans(page)
    analytics = page.get_by_label("Basic Analytics", exact=True)
    calls = page.get_by_label("Basic API calls a day", exact=True)
    expect(analytics).to_be_checked(checked=had_analytics)
    expect(calls).to_have_value(str(api_calls))

    # Tick (or untick) a feature, change a limit, save.
    analytics.set_checked(not had_analytics)
    calls.fill(str(api_calls + 234))
    save_matrix(page)
    expect(page.get_by_role("status")).to_contain_text("Saved: basic.")

    page.reload()
    expect(page.get_by_role("status")).to_have_count(0)  # the flash is shown once
    expect(page.get_by_label("Basic Analytics", exact=True)).to_be_checked(checked=not had_analytics)
    expect(page.get_by_label("Basic API calls a day", exact=True)).to_have_value(str(api_calls + 234))
    expect(page.get_by_label("Professional API calls a day", exact=True)).to_have_value(str(professional_api_calls))

    # A bad value: the error on the page, the other input kept, nothing saved.
    page.get_by_label("Basic Storage (MB)", exact=True).fill("abc")
    page.get_by_label("Professional API calls a day", exact=True).fill(str(professional_api_calls + 1))
    save_matrix(page)
    expect(page.get_by_role("alert")).to_contain_text("1 value to correct")
    storage_cell = page.get_by_label("Basic Storage (MB)", exact=True)
    expect(storage_cell).to_have_attribute("aria-invalid", "true")  # the message beside it, named by it
    expect(storage_cell).to_have_accessible_description(re.compile(r"^Basic – Storage \(MB\): enter a whole number\."))
    expect(page.get_by_label("Basic Storage (MB)", exact=True)).to_have_value("abc")
    expect(page.get_by_label("Professional API calls a day", exact=True)).to_have_value(
        str(professional_api_calls + 1))
    expect(page.get_by_label("Basic API calls a day", exact=True)).to_have_value(str(api_calls + 234))
    expect(page.get_by_role("status")).to_have_count(0)

    open_plans(page)  # what is saved: the first change only
    expect(page.get_by_label("Basic Storage (MB)", exact=True)).to_have_value(str(storage))
    expect(page.get_by_label("Professional API calls a day", exact=True)).to_have_value(str(professional_api_calls))
    expect(page.get_by_label("Basic API calls a day", exact=True)).to_have_value(str(api_calls + 234))

    # Put back what was changed, through the page.
    page.get_by_label("Basic Analytics", exact=True).set_checked(had_analytics)
    page.get_by_label("Basic API calls a day", exact=True).fill(str(api_calls))
    save_matrix(page)
    expect(page.get_by_role("status")).to_contain_text("Saved: basic.")
    expect(page.get_by_label("Basic Analytics", exact=True)).to_be_checked(checked=had_analytics)
    expect(page.get_by_label("Basic API calls a day", exact=True)).to_have_value(str(api_calls))


def test_tenant_admin_reads_the_usage_bars(page, live_app, made_through_ui):
    slug = made_through_ui.tenant(unique_slug("bru"))
    admin_email = f"owner@{slug}.example"
    with live_app.app_context():
        try:
            tenant, token = create_tenant(slug, f"Usage {slug}", "basic", admin_email)
            ref = TenantRef.of(tenant)
            plan = db.session.get(Plan, "basic")
            max_users, api_calls, rpm, storage_mb = (plan.max_users, plan.api_calls_per_day,
                                                     plan.requests_per_minute, plan.storage_mb)
            with tenant_transaction(ref) as session:
                session.add_all(TenantUser(tenant_id=ref.id, email=f"member{n}@{slug}.example", role="member",
                                           name=f"Member {n}", password_hash=hash_password(PASSWORD))
                                for n in (1, 2))
        finally:
            db.session.remove()
    users = 3  # the first admin and two members

    # The first admin sets a password with the link provisioning gave, and is signed in.
    first_admin_signs_in(page, slug, token)
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(slug)}/$"))
    expect(page.locator("header .who")).to_contain_text(admin_email)
    expect(page.locator("header .role")).to_have_text("admin")

    page.get_by_role("navigation").get_by_role("link", name="Usage", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(slug)}/usage$"))
    expect(page.get_by_role("heading", name="Usage")).to_contain_text("Basic")
    bars = page.locator("#usage-bars")
    expect(bars.locator(".meter")).to_have_count(4)
    expect(bars.locator('.meter[data-measure="Users"] span')).to_have_text(f"Users: {users} of {max_users}")
    expect(bars.locator('.meter[data-measure="API calls today"] span')).to_have_text(
        f"API calls today: 0 of {api_calls}")
    expect(bars.locator('.meter[data-measure="Storage"] span')).to_have_text(
        re.compile(rf"^Storage: [0-9.]+ MB of {storage_mb} MB$"))
    # This request is counted before the page is made: at least one in this minute.
    expect(bars.locator('.meter[data-measure="Requests this minute"] span')).to_have_text(
        re.compile(rf"^Requests this minute: [1-9][0-9]* of {rpm}$"))

    users_bar = bars.locator('.meter[data-measure="Users"] progress')
    expect(users_bar).to_have_attribute("max", str(max_users))
    expect(users_bar).to_have_attribute("value", str(users))
    expect(bars.locator('.meter[data-measure="API calls today"] progress')).to_have_attribute("value", "0")
    expect(bars).to_contain_text("00:00 UTC")

    # One more user (invited, no password yet): the bar follows.
    with live_app.app_context():
        try:
            with tenant_transaction(ref) as session:
                session.add(TenantUser(tenant_id=ref.id, email=f"late-{uuid.uuid4().hex[:6]}@{slug}.example",
                                       role="member", name="Late"))
        finally:
            db.session.remove()
    page.reload()
    expect(bars.locator('.meter[data-measure="Users"] span')).to_have_text(f"Users: {users + 1} of {max_users}")
    expect(users_bar).to_have_attribute("value", str(users + 1))


def test_a_tenant_admin_asks_for_a_plan_and_staff_approve_it(page, new_context, live_app, staff_user,
                                                            made_through_ui):
    """The plan request's whole way: asked on the tenant's Plan page, approved on the
    console's Plan requests page, seen by the tenant on its next view."""
    slug = made_through_ui.tenant(unique_slug("brq"))
    with live_app.app_context():
        try:
            _tenant, token = create_tenant(slug, f"Asks {slug}", "basic", f"owner@{slug}.example")
        finally:
            db.session.remove()
    first_admin_signs_in(page, slug, token)
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(slug)}/$"))
    page.get_by_role("navigation").get_by_role("link", name="Plan", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/t/{re.escape(slug)}/plan$"))
    page.get_by_label("Move to").select_option("professional")
    page.get_by_role("button", name="Ask for this plan").click()
    expect(page.locator(".flash")).to_contain_text("Your request is with our staff")
    expect(page.locator("main")).to_contain_text("basic → professional: pending")

    staff = new_context().new_page()
    sign_in_staff(staff, staff_user)
    staff.get_by_role("navigation").get_by_role("link", name="Plan requests", exact=True).click()
    expect(staff).to_have_url(re.compile(r"/admin/plan-requests$"))
    row = staff.locator("#plan-requests tbody tr", has_text=slug)
    expect(row).to_contain_text("professional")
    row.get_by_role("button", name="Approve").click()
    expect(staff.locator(".flash")).to_contain_text("Request approved.")
    expect(staff.locator("#plan-requests")).not_to_contain_text(slug)

    page.reload()
    expect(page.locator("main")).to_contain_text("basic → professional: approved")
    expect(page.locator("main")).to_contain_text("Professional")
