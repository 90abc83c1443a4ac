"""Analytics in the browser: a tenant admin opens the dashboard, every chart draws (pixels
on its canvas) beside a table of the same numbers, changes the range, downloads a CSV;
staff open the overview and the tenant's dashboard."""
import re
from datetime import datetime, time, timedelta, timezone

import pytest
from playwright.sync_api import expect

from portal.analytics.events import store
from portal.extensions import db
from portal.tenancy.context import TenantRef, tenant_context
from portal.tenants.services import get_tenant_by_slug
from tests.browser.helpers import first_admin_signs_in, make_tenant
from tests.browser.test_journeys import sign_in_staff
from tests.factories import unique_slug

pytestmark = pytest.mark.browser

TODAY = datetime.now(timezone.utc).date()
# Pixels drawn on a canvas: a chart that failed to draw leaves it blank.
DRAWN = """canvas => { const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                      let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""


def seed_events(live_app, slug):
    """view: 5 events by 3 users (2 of them 10 days ago, the rest at 01:00 today); buy: 2 by
    1 user, at 02:00 today."""
    def at(days_ago, hour=1):
        return datetime.combine(TODAY - timedelta(days=days_ago), time(hour), timezone.utc)

    rows = [("view", "u1", 10, 1), ("view", "u2", 10, 1), ("view", "u1", 0, 1), ("view", "u2", 0, 1),
            ("view", "u3", 0, 1), ("buy", "u1", 0, 2), ("buy", "u1", 0, 2)]
    with live_app.app_context():
        try:
            with tenant_context(TenantRef.of(get_tenant_by_slug(slug))):
                store([{"name": n, "user_key": u, "properties": {"plan": "pro" if u == "u1" else "free"},
                        "occurred_at": at(d, h)} for n, u, d, h in rows])
        finally:
            db.session.remove()


def expect_charts_drawn(page):
    figures = page.locator("figure[data-chart]")
    expect(figures.first).to_have_attribute("data-drawn", re.compile(r"\d+"))
    for n in range(figures.count()):
        canvas = figures.nth(n).locator("canvas")
        assert canvas.evaluate(DRAWN) > 100, figures.nth(n).get_attribute("id")


def test_admin_reads_the_dashboard_changes_the_range_and_downloads_csv(page, live_app, made_through_ui,
                                                                       staff_user, tmp_path):
    slug = made_through_ui.tenant(unique_slug("bra"))
    first_admin_signs_in(page, slug, make_tenant(live_app, slug, f"Analytics {slug}", "enterprise"))
    seed_events(live_app, slug)
    page.get_by_role("navigation").get_by_role("link", name="Analytics", exact=True).click()
    expect(page.get_by_role("heading", name="Analytics", exact=True)).to_be_visible()
    events = page.locator("#events-table tbody")
    expect(events.locator("tr", has_text="view")).to_have_text(re.compile(r"view\s*5\s*3"))
    expect(events.locator("tr", has_text="buy")).to_have_text(re.compile(r"buy\s*2\s*1"))
    expect_charts_drawn(page)
    # The chart's series are the table's numbers.
    assert page.locator("#chart-top").evaluate(
        "f => Chart.getChart(f.querySelector('canvas')).data.datasets[0].data") == [
        int(cell) for cell in page.locator("#events-table tbody tr td:nth-child(2)").all_inner_texts()]

    # The last 7 days: the views of 10 days ago drop out; the range is in the URL.
    page.get_by_label("From").fill((TODAY - timedelta(days=6)).isoformat())
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page).to_have_url(re.compile(rf"start={TODAY - timedelta(days=6)}"))
    expect(events.locator("tr", has_text="view")).to_have_text(re.compile(r"view\s*3\s*3"))
    expect_charts_drawn(page)

    # A funnel and a breakdown (enterprise: advanced reports).
    page.get_by_label("Steps: 2 to 4 event names").fill("view,buy")
    page.get_by_role("button", name="Show funnel").click()
    expect(page.locator("#chart-funnel tbody tr").nth(1)).to_have_text(re.compile(r"buy\s*1\s*33.3 %"))
    page.get_by_label("Event", exact=True).fill("view")
    page.get_by_label("Property").fill("plan")
    page.get_by_role("button", name="Break down").click()
    expect(page.locator("#chart-breakdown tbody tr").first).to_have_text(re.compile(r"free\s*2\s*2"))
    expect_charts_drawn(page)

    with page.expect_download() as download:
        page.locator("#funnel").get_by_role("link", name="CSV").click()
    path = tmp_path / "funnel.csv"
    download.value.save_as(path)
    assert path.read_text().splitlines() == ["name,users", "view,3", "buy,1"]

    # A bad range: the message beside the field, the page still there.
    page.get_by_label("From").fill((TODAY + timedelta(days=2)).isoformat())
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.locator("#end-error, #start-error")).to_have_count(1)
    expect(page.locator("#events-table")).to_be_visible()

    # Staff: the overview across tenants, then this tenant's dashboard from its page.
    sign_in_staff(page, staff_user)
    page.get_by_role("navigation").get_by_role("link", name="Analytics", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Analytics across tenants"))).to_be_visible()
    expect_charts_drawn(page)
    page.locator("#top-activity").get_by_role("link", name=slug).click()
    page.get_by_role("link", name="Open the tenant's analytics dashboard").click()
    expect(page.get_by_role("heading", name=f"Analytics of Analytics {slug}")).to_be_visible()
    expect(page.locator("#events-table tbody tr", has_text="view")).to_have_text(re.compile(r"view\s*5\s*3"))
    expect_charts_drawn(page)
