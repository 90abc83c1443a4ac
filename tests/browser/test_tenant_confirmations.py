"""A tenant admin's irreversible actions ask first (issue 14, item 3): removing a user,
revoking an API token and deleting a role. Dismissing the browser's question leaves the
user, token or role in place; accepting it does the deed. And a new token (item 13): its
page has a Copy button, and reloading it makes no second token and shows it no more."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import first_admin_signs_in, make_tenant
from tests.factories import unique_slug

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _fail_fast(page):
    page.set_default_timeout(10_000)


def _answer(page, accept, asked):
    """Answer the next dialog (accept or dismiss), noting its question in `asked`."""
    def answer(dialog):
        asked.append(dialog.message)
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()
    page.once("dialog", answer)


def _stayed(page):
    """Nothing was sent: the page is the same document a moment later (a form sent loads
    another one, without this mark)."""
    page.evaluate("window.confirmTestMark = true")
    page.wait_for_timeout(300)
    assert page.evaluate("window.confirmTestMark === true")


def test_remove_user_revoke_token_and_delete_role_ask_first(page, live_app, made_through_ui):
    slug = made_through_ui.tenant(unique_slug("brc"))
    member = f"member@{slug}.example"
    first_admin_signs_in(page, slug, make_tenant(live_app, slug, f"Confirm {slug}", users=[(member, "member")]))
    nav = page.get_by_role("navigation")
    asked = []

    # Remove a user: dismissed, they stay; accepted, they are gone.
    nav.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name=member).click()
    _answer(page, False, asked)
    page.get_by_role("button", name="Remove").click()
    assert asked == [f"Remove {member} from this workspace? This cannot be undone."]
    _stayed(page)
    nav.get_by_role("link", name="Users", exact=True).click()
    expect(page.locator("#users")).to_contain_text(member)
    page.get_by_role("link", name=member).click()
    _answer(page, True, asked)
    page.get_by_role("button", name="Remove").click()
    expect(page.locator(".flash-success")).to_contain_text(f"{member}: removed.")
    expect(page.locator("#users")).not_to_contain_text(member)

    # A token: made once (the POST redirects), shown once with a Copy button.
    nav.get_by_role("link", name="API tokens", exact=True).click()
    page.get_by_label("Name").fill("deploy bot")
    page.get_by_label("Read orders").check()
    page.get_by_role("button", name="Make token").click()
    expect(page).to_have_url(re.compile(rf"/t/{slug}/tokens/created$"))
    token = page.locator("#api-token")
    expect(token).to_have_text(re.compile(r"^tp_[0-9a-f]{32}_[A-Za-z0-9_-]+$"))
    secret = token.inner_text()
    copy = page.get_by_role("button", name="Copy")
    expect(copy).to_have_attribute("data-copy", "#api-token")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("navigator.clipboard.writeText('')")
    page.evaluate("""window.labels = []; new MutationObserver(() => window.labels.push(
        document.querySelector('[data-copy]').textContent)).observe(document.querySelector('[data-copy]'),
        {childList: true, characterData: true, subtree: true})""")
    copy.click()
    page.wait_for_function("window.labels.includes('Copied')")  # the button says so (for 1.5 s)
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.reload()  # no resubmission: the list, with the token once and its secret no more
    expect(page).to_have_url(re.compile(rf"/t/{slug}/tokens$"))
    expect(page.locator("#tokens tbody tr", has_text="deploy bot")).to_have_count(1)
    assert secret not in page.content()

    # Revoke it: dismissed, it stays active; accepted, it is revoked.
    row = page.locator("#tokens tbody tr", has_text="deploy bot")
    _answer(page, False, asked)
    row.get_by_role("button", name="Revoke").click()
    assert asked[-1] == "Revoke the token deploy bot? It stops working at once; this cannot be undone."
    _stayed(page)
    page.reload()
    expect(page.locator("#tokens tbody tr", has_text="deploy bot")).to_contain_text("active")
    _answer(page, True, asked)
    page.locator("#tokens tbody tr", has_text="deploy bot").get_by_role("button", name="Revoke").click()
    expect(page.locator("#tokens tbody tr", has_text="deploy bot")).to_contain_text("revoked")

    # Delete a role: dismissed, it stays; accepted, it is gone.
    nav.get_by_role("link", name="Roles", exact=True).click()
    page.get_by_role("link", name="New role").click()
    page.get_by_label("Name").fill("Ревизор")
    page.get_by_label("orders.view", exact=True).check()
    page.get_by_role("button", name=re.compile("Create|Save")).click()
    role_row = page.locator("tr[id^='role-r-']", has_text="Ревизор")
    expect(role_row).to_have_count(1)
    _answer(page, False, asked)
    role_row.get_by_role("button", name="Delete").click()
    assert asked[-1] == "Delete the role Ревизор? This cannot be undone."
    _stayed(page)
    page.reload()
    expect(page.locator("tr[id^='role-r-']", has_text="Ревизор")).to_have_count(1)
    _answer(page, True, asked)
    page.locator("tr[id^='role-r-']", has_text="Ревизор").get_by_role("button", name="Delete").click()
    expect(page.locator(".flash-success")).to_contain_text("Role deleted.")
    expect(page.locator("tr[id^='role-r-']")).to_have_count(0)
