"""Wide tables (issue 14): in the staff console's tenants list, jobs page and audit log,
every date (`time.when`) renders on one line and every id is a short `code.id` whose
title holds the whole id, at 1366 px (and on a phone, inside the table's own box)."""
import re
import uuid

import pytest

from portal.extensions import db
from portal.services import jobqueue
from tests.browser.helpers import make_tenant, staff_signs_in
from tests.factories import unique_slug

pytestmark = pytest.mark.browser

WIDTHS = {"wide": {"width": 1366, "height": 800}, "phone": {"width": 390, "height": 844}}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def wide_tenant(live_app):
    """A tenant (its provisioning job, and audit events naming that job by id) and a purge
    job of a tenant that is gone (the jobs page shows that tenant's id, short)."""
    slug = unique_slug("wide")
    make_tenant(live_app, slug, f"Wide tables {slug}")
    with live_app.app_context():
        try:
            gone = jobqueue.create("purge", uuid.uuid4(), ["purge"], "wide-tables@staff.example")
            gone.state, gone.percent = "succeeded", 100
            db.session.commit()
        finally:
            db.session.remove()
    return slug


def one_line_problems(page):
    """Each `time.when` and `code.id` of the page taller than one line, as text."""
    return page.evaluate("""() => [...document.querySelectorAll('time.when, code.id')].flatMap(el => {
        const style = getComputedStyle(el);
        const line = style.lineHeight === 'normal' ? 1.2 * parseFloat(style.fontSize) : parseFloat(style.lineHeight);
        const height = el.getBoundingClientRect().height;
        return height < 1.6 * line ? [] : [`${el.outerHTML}: ${height}px high, a line is ${line}px`];
    })""")


def check_page(page, path, ids_expected):
    response = page.goto(path)
    assert response.status == 200, path
    dates = page.locator("table time.when")
    assert dates.count() > 0, f"{path} shows no date"
    for date in dates.all()[:50]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?", date.inner_text()), date.inner_text()
        assert date.get_attribute("datetime")
    assert not one_line_problems(page), (path, one_line_problems(page))
    ids = page.locator("table code.id")
    if ids_expected:
        assert ids.count() > 0, f"{path} shows no id"
    for shown in ids.all():
        whole = shown.get_attribute("title")
        assert whole and UUID.match(whole), (path, whole)
        assert shown.inner_text() == whole[:8] + "…"
        assert shown.get_attribute("aria-label") == whole
        assert shown.evaluate("el => getComputedStyle(el).fontFamily").lower().find("mono") >= 0
    # The table scrolls in its own box: the page is no wider than the window.
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, path


@pytest.mark.parametrize("width", WIDTHS)
def test_ids_and_dates_stay_on_one_line(browser, base_url, staff_user, wide_tenant, width):
    email, password = staff_user
    context = browser.new_context(base_url=base_url, viewport=WIDTHS[width])
    page = context.new_page()
    try:
        staff_signs_in(page, email, password)
        check_page(page, "/admin/tenants", ids_expected=False)
        check_page(page, "/admin/jobs", ids_expected=True)  # the purged tenant's id
        check_page(page, f"/admin/audit?tenant={wide_tenant}", ids_expected=True)  # its provisioning's job
    finally:
        context.close()
