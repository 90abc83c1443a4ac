"""Issue 15's new pages in a browser, at 1366 and 390 px: the Jobs page with a Cancel
button (it asks first), an audit event's own page, the audit log with a bad filter beside
its field. None wider than the window, no serious or critical axe-core violation."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.extensions import db
from portal.lifecycle.exports import request_export
from portal.models import AuditEvent, Tenant
from tests.browser.helpers import make_tenant, staff_signs_in
from tests.browser.test_console_frame import WIDTHS, page_overflow, serious_violations
from tests.factories import unique_slug

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def queued(live_app):
    """A tenant with a queued export (not enqueued: no worker takes it) and an event."""
    slug = unique_slug("cancel")
    make_tenant(live_app, slug, f"Cancel {slug}", plan="enterprise")
    with live_app.app_context():
        try:
            tenant = db.session.execute(select(Tenant).where(Tenant.slug == slug)).scalar_one()
            job = request_export(tenant, ("system", None, "browser-test"))
            event = db.session.execute(select(AuditEvent.id).where(AuditEvent.tenant_id == tenant.id)
                                       .order_by(AuditEvent.id.desc()).limit(1)).scalar_one()
            return slug, str(job.id), event
        finally:
            db.session.remove()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_new_pages_fit_and_pass_axe(browser, base_url, staff_user, queued, width):
    slug, job_id, event_id = queued
    context = browser.new_context(base_url=base_url, viewport=WIDTHS[width])
    page = context.new_page()
    try:
        staff_signs_in(page, *staff_user)
        problems = []
        for url in (f"/admin/jobs?tenant={slug}", f"/admin/audit/{event_id}",
                    "/admin/audit?tenant=Not%20a%20slug&actor=%01"):
            page.goto(url)
            if page_overflow(page) > 0:
                problems.append(f"{url} is {page_overflow(page)} px wider than the window")
            problems += [f"{url}: {v}" for v in serious_violations(page)]
        assert not problems, "\n".join(problems)
        # Cancel asks first; saying no changes nothing, saying yes cancels.
        page.goto(f"/admin/jobs?tenant={slug}")
        button = page.locator(f'form[action="/admin/jobs/{job_id}/cancel"] button')
        page.once("dialog", lambda dialog: dialog.dismiss())
        button.click()
        expect(button).to_be_visible()
        if width == "phone":  # (once: the job is cancelled for good)
            page.once("dialog", lambda dialog: dialog.accept())
            button.click()
            expect(page.get_by_text("Cancelled: the export will not run.")).to_be_visible()
            expect(page.locator(f'form[action="/admin/jobs/{job_id}/cancel"]')).to_have_count(0)
    finally:
        context.close()
