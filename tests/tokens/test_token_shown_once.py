"""Issue 14, item 13: making a token answers 302 (a reload makes no second token); the page
that follows shows the secret once, with a copy button, and keeps no copy of it."""
import re

from sqlalchemy import func, select

from portal.tenancy.data import ApiToken
from portal.tenancy.placement import tenant_session
from tests.factories import auth, csrf_token, sign_in_tenant


def _count(tenant):
    with tenant_session(tenant) as session:
        return session.execute(select(func.count()).select_from(ApiToken)).scalar_one()


def test_a_token_is_made_once_and_shown_once_after_a_redirect(client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    base = f"/t/{tenant.slug}"
    form = {"name": "deploy bot", "scopes": ["orders:read"], "days": "",
            "csrf_token": csrf_token(client.get(f"{base}/tokens").get_data(as_text=True))}
    made = client.post(f"{base}/tokens", data=form)
    assert made.status_code == 302 and made.headers["Location"].endswith(f"{base}/tokens/created")
    assert "tp_" not in made.get_data(as_text=True)  # the POST's answer holds no secret
    assert _count(tenant) == 1

    shown = client.get(made.headers["Location"])
    body = shown.get_data(as_text=True)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    [token] = re.findall(r'<code id="api-token">([^<]+)</code>', body)
    assert '<button type="button" data-copy="#api-token">Copy</button>' in body
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 200

    again = client.get(made.headers["Location"])  # a reload of the page that showed it
    assert again.status_code == 302 and again.headers["Location"].endswith(f"{base}/tokens")
    listing = client.get(again.headers["Location"]).get_data(as_text=True)
    assert token not in listing and "A token is shown once" in listing
    assert _count(tenant) == 1  # nothing made again


def test_a_refused_token_is_not_redirected_and_keeps_the_input(client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    base = f"/t/{tenant.slug}"
    refused = client.post(f"{base}/tokens", data={
        "name": "x" * 81, "scopes": ["orders:read"],
        "csrf_token": csrf_token(client.get(f"{base}/tokens").get_data(as_text=True))})
    assert refused.status_code == 400 and 'id="name-error"' in refused.get_data(as_text=True)
    assert client.get(f"{base}/tokens/created").status_code == 302 and _count(tenant) == 0


def test_a_viewer_cannot_open_the_created_page(client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.user(tenant, role="viewer"))
    assert client.get(f"/t/{tenant.slug}/tokens/created").status_code == 403


def test_a_token_made_in_one_tenant_is_never_shown_in_another(client, factory):
    """The secret waits in tenant A's session only: the same browser, signed in to tenant B
    too, finds nothing of A's at B's page that shows a new token."""
    a, b = factory.tenant(), factory.tenant()
    sign_in_tenant(client, a, factory.admin(a))
    sign_in_tenant(client, b, factory.admin(b))
    form = {"name": "a's bot", "scopes": ["orders:read"], "days": "",
            "csrf_token": csrf_token(client.get(f"/t/{a.slug}/tokens").get_data(as_text=True))}
    assert client.post(f"/t/{a.slug}/tokens", data=form).status_code == 302
    at_b = client.get(f"/t/{b.slug}/tokens/created")
    assert at_b.status_code == 302 and at_b.headers["Location"].endswith(f"/t/{b.slug}/tokens")
    assert "tp_" not in at_b.get_data(as_text=True) and "a's bot" not in at_b.get_data(as_text=True)
    shown = client.get(f"/t/{a.slug}/tokens/created").get_data(as_text=True)  # A's is still A's
    assert re.search(r'<code id="api-token">tp_', shown)
