"""Checkboxes sit beside their label (issue 14, item 12): on the tenant's Settings page
and the staff impersonation form, at 1366 px and at 390 px, each box is on the line of
its label (their vertical centres within a few pixels) and left of it."""

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.tenants.services import get_tenant_by_slug
from tests.browser.helpers import make_tenant, staff_signs_in, user_signs_in
from tests.factories import PASSWORD, unique_slug

pytestmark = pytest.mark.browser

WIDTHS = {"wide": {"width": 1366, "height": 800}, "phone": {"width": 390, "height": 844}}
SETTINGS_BOX = "Our support staff may look into this account when you ask them to"
WRITE_BOX = "Allow changes (write access)"


@pytest.fixture(scope="module")
def box_tenant(live_app):
    """A tenant with an admin who has a password: (slug, id, admin's email)."""
    slug = unique_slug("boxes")
    admin_email = f"boss@{slug}.example"
    make_tenant(live_app, slug, f"Boxes {slug}", users=[(admin_email, "admin")])
    with live_app.app_context():
        try:
            tenant_id = str(get_tenant_by_slug(slug).id)
        finally:
            db.session.remove()
    return slug, tenant_id, admin_email


def assert_beside_its_label(page, box):
    """`box` (a checkbox) is left of its label and on its line. A label that wraps (a long
    one on a phone) is measured by its first line: the box sits beside that line."""
    expect(box).to_be_visible()
    box_id = box.get_attribute("id")
    label = page.locator(f'label[for="{box_id}"]')
    expect(label).to_be_visible()
    boxed = box.bounding_box()
    # The first line of the label's words (a range over its text, not the whole label box).
    first_line = label.evaluate("""label => {
        const text = [...label.childNodes].find(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
        const range = document.createRange();
        range.selectNodeContents(text);
        const r = range.getClientRects()[0];
        return {x: r.x, y: r.y, width: r.width, height: r.height};
    }""")
    box_centre = boxed["y"] + boxed["height"] / 2
    line_centre = first_line["y"] + first_line["height"] / 2
    assert abs(box_centre - line_centre) <= 4, (boxed, first_line)
    assert boxed["x"] + boxed["width"] <= first_line["x"], (boxed, first_line)
    # Not stretched or padded like a text input: a box, a few pixels to a side.
    assert boxed["width"] <= 24 and boxed["height"] <= 24, boxed
    # The page still fits its window.
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


@pytest.mark.parametrize("width", WIDTHS)
def test_the_settings_checkbox_sits_beside_its_label(browser, base_url, box_tenant, width):
    slug, _tenant_id, admin_email = box_tenant
    context = browser.new_context(base_url=base_url, viewport=WIDTHS[width])
    page = context.new_page()
    try:
        user_signs_in(page, slug, admin_email, PASSWORD)
        page.goto(f"/t/{slug}/settings")
        box = page.get_by_role("checkbox", name=SETTINGS_BOX)
        assert_beside_its_label(page, box)
        # Its label is its name: clicking the label ticks the box.
        checked = box.is_checked()
        page.locator(f'label[for="{box.get_attribute("id")}"]').click()
        assert box.is_checked() != checked
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_impersonation_checkbox_sits_beside_its_label(browser, base_url, staff_user, box_tenant, width):
    _slug, tenant_id, _admin = box_tenant
    email, password = staff_user
    context = browser.new_context(base_url=base_url, viewport=WIDTHS[width])
    page = context.new_page()
    try:
        staff_signs_in(page, email, password)
        page.goto(f"/admin/tenants/{tenant_id}/impersonate")
        box = page.get_by_role("checkbox", name=WRITE_BOX)
        assert_beside_its_label(page, box)
        # A refused start keeps the box beside its label (the form comes back with errors).
        box.check()
        page.get_by_role("button", name="Start impersonation").click()
        expect(page.locator(".error").first).to_be_visible()
        assert_beside_its_label(page, page.get_by_role("checkbox", name=WRITE_BOX))
        expect(page.get_by_role("checkbox", name=WRITE_BOX)).to_be_checked()
    finally:
        context.close()
