"""Irreversible actions ask first (issue 14, item 3): a form with data-confirm is sent only
when the person accepts the browser's question (portal/static/js/console.js). Dismissed,
nothing changes; accepted, the action is done. Shown on the plan matrix: retiring and
deleting a plan."""
import uuid

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.models import Plan
from tests.browser.test_journeys import sign_in_staff

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _fail_fast(page):
    page.set_default_timeout(10_000)


@pytest.fixture()
def plan_code(live_app):
    """A plan code for this test; its plan is deleted afterwards if the test left it."""
    code = f"confirm-{uuid.uuid4().hex[:6]}"
    yield code
    with live_app.app_context():
        try:
            plan = db.session.get(Plan, code)
            if plan is not None:
                db.session.delete(plan)
                db.session.commit()
        finally:
            db.session.remove()


def _plan(live_app, code):
    with live_app.app_context():
        try:
            plan = db.session.get(Plan, code)
            return None if plan is None else {"is_retired": plan.is_retired}
        finally:
            db.session.remove()


def _answer(page, accept, asked):
    """Answer the next dialog (accept or dismiss), noting its question in `asked`."""
    def answer(dialog):
        asked.append((dialog.type, dialog.message))
        dialog.accept() if accept else dialog.dismiss()
    page.once("dialog", answer)


def _stayed(page):
    """Nothing was sent: the page is the same document a moment later (a form sent would
    have loaded another, without this mark)."""
    page.evaluate("window.confirmTestMark = true")
    page.wait_for_timeout(300)
    assert page.evaluate("window.confirmTestMark === true")


def test_retire_and_delete_a_plan_ask_first(page, staff_user, live_app, plan_code):
    name = f"Confirm {plan_code[-6:]}"
    sign_in_staff(page, staff_user)
    page.goto("/admin/plans")
    page.get_by_label("Code", exact=True).fill(plan_code)
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Add plan").click()
    expect(page.get_by_role("status")).to_contain_text(f"Plan {name} added")
    assert _plan(live_app, plan_code) == {"is_retired": False}

    # Retire: dismissed, the plan is still offered; accepted, it is retired.
    asked = []
    _answer(page, False, asked)
    page.get_by_role("button", name=f"Retire {name}", exact=True).click()
    assert asked == [("confirm", f"Retire {name}? New tenants can no longer choose it; its 0 tenant(s) keep it.")]
    _stayed(page)
    assert _plan(live_app, plan_code) == {"is_retired": False}
    _answer(page, True, asked)
    page.get_by_role("button", name=f"Retire {name}", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(f"{name} is retired.")
    assert len(asked) == 2 and _plan(live_app, plan_code) == {"is_retired": True}

    # Delete: dismissed, the plan is there still; accepted, it is gone.
    delete = page.get_by_role("button", name=f"Delete {name}", exact=True)
    _answer(page, False, asked)
    delete.click()
    assert asked[-1] == ("confirm", f"Delete the plan {name} ({plan_code})? This cannot be undone.")
    _stayed(page)
    expect(delete).to_be_visible()
    assert _plan(live_app, plan_code) == {"is_retired": True}
    _answer(page, True, asked)
    delete.click()
    expect(page.get_by_role("status")).to_contain_text(f"Plan {plan_code} deleted.")
    expect(page.get_by_role("button", name=f"Delete {name}", exact=True)).to_have_count(0)
    assert len(asked) == 4 and _plan(live_app, plan_code) is None
