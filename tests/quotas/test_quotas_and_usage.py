"""Quotas (storage, max users), the Usage page against counts made here, and the staff
quotas pages; another tenant's usage and plan stay out of reach."""
import re

from tests.factories import csrf_token, sign_in_staff, sign_in_tenant
from tests.quotas.conftest import fresh_minute, user_count


def _add_user(client, tenant, email):
    url = f"/t/{tenant.slug}/users/new"
    token = csrf_token(client.get(url).get_data(as_text=True))
    return client.post(url, data={"email": email, "name": "New Person", "role": "member", "csrf_token": token})


def test_over_storage_quota_writes_are_refused_and_reads_go_on(client, factory, override):
    tenant = factory.tenant(plan="basic")
    admin = factory.admin(tenant)
    factory.order(tenant)
    sign_in_tenant(client, tenant, admin)
    assert client.get(f"/t/{tenant.slug}/users/new").status_code == 200
    override(tenant, "limit:storage_mb", "0")
    before = user_count(tenant)
    refused = _add_user(client, tenant, "over.quota@example.com")
    assert refused.status_code == 403
    body = refused.get_data(as_text=True)
    assert "Storage quota reached" in body and "0 MB of storage" in body
    assert user_count(tenant) == before
    for page in ("/", "/users", "/orders", "/usage", "/plan"):
        assert client.get(f"/t/{tenant.slug}{page}").status_code == 200, page
    # What frees space still works: removing a user.
    member = factory.user(tenant)
    token = csrf_token(client.get(f"/t/{tenant.slug}/users/{member.id}").get_data(as_text=True))
    assert client.post(f"/t/{tenant.slug}/users/{member.id}/remove", data={"csrf_token": token}).status_code == 302
    assert user_count(tenant) == before
    # Signing out (a POST of the auth blueprint) still works.
    token = csrf_token(client.get(f"/t/{tenant.slug}/").get_data(as_text=True))
    assert client.post(f"/t/{tenant.slug}/logout", data={"csrf_token": token}).status_code == 302


def test_max_users_override_lets_the_eleventh_user_in(client, factory, override):
    tenant = factory.tenant(plan="basic")  # 10 users
    admin = factory.admin(tenant)
    while user_count(tenant) < 10:
        factory.user(tenant)
    override(tenant, "limit:max_users", "11")
    sign_in_tenant(client, tenant, admin)
    added = _add_user(client, tenant, "eleventh@example.com")
    assert added.status_code == 302, re.findall(r'class="error"[^>]*>([^<]*)<', added.get_data(as_text=True))
    assert user_count(tenant) == 11
    refused = _add_user(client, tenant, "twelfth@example.com")
    assert refused.status_code == 400
    assert "allows 11 users and this tenant has 11" in refused.get_data(as_text=True)
    assert user_count(tenant) == 11


def _meter(body, label):
    match = re.search(rf'data-measure="{label}">\s*<span>{label}: ([^<]*) of ([^<]*)</span>', body)
    assert match, f"no meter {label}"
    return match.group(1), match.group(2)


def test_usage_page_matches_counts_made_here(client, factory):
    tenant = factory.tenant(plan="basic")
    admin = factory.admin(tenant)
    added = 3
    for _ in range(added):
        factory.user(tenant)
    users = 1 + 1 + added  # the first admin made by provisioning, `admin`, and the others
    fresh_minute(5)
    requests = 0
    sign_in_tenant(client, tenant, admin)  # a GET and a POST
    requests += 2
    api_calls = 4
    for _ in range(api_calls):
        assert client.get("/api/v1/status", headers={"X-Tenant-ID": tenant.slug}).status_code == 200
    requests += api_calls
    page = client.get(f"/t/{tenant.slug}/usage")
    requests += 1  # the usage page counts itself before it reads the counter
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert _meter(body, "Users") == (str(users), "10")
    assert _meter(body, "API calls today") == (str(api_calls), "1000")
    assert _meter(body, "Requests this minute") == (str(requests), "300")  # basic: a team browsing
    used_mb, limit = _meter(body, "Storage")
    assert limit == "1024 MB" and float(used_mb.removesuffix(" MB")) < 1
    # A viewer may not see it (plan.view: admins and members).
    viewer = factory.user(tenant, role="viewer")
    sign_in_tenant(client, tenant, viewer)
    assert client.get(f"/t/{tenant.slug}/usage").status_code == 403


def test_another_tenants_usage_and_plan_are_out_of_reach(client, factory):
    a, b = factory.tenant(plan="basic"), factory.tenant(plan="professional")
    sign_in_tenant(client, a, factory.admin(a))
    for page in ("usage", "plan"):
        own = client.get(f"/t/{a.slug}/{page}")
        assert own.status_code == 200
        foreign = client.get(f"/t/{b.slug}/{page}")
        assert foreign.status_code == 302
        assert foreign.headers["Location"].startswith(f"/t/{b.slug}/login")
        # Nor through A's address with B named in a header (pages refuse the header).
        assert client.get(f"/t/{a.slug}/{page}", headers={"X-Tenant-ID": b.slug}).status_code in (400, 404)
    assert client.get(f"/t/{b.slug}/usage", follow_redirects=True).get_data(as_text=True).count("Professional") == 0


def test_staff_quotas_and_top_pages_show_every_tenant(client, factory):
    a, b = factory.tenant(plan="basic"), factory.tenant(plan="professional")
    client.get("/api/v1/status", headers={"X-Tenant-ID": b.slug})
    sign_in_staff(client, factory.staff("viewer"))
    quotas = client.get("/admin/quotas")
    assert quotas.status_code == 200
    body = quotas.get_data(as_text=True)
    assert a.slug in body and b.slug in body
    top = client.get("/admin/top")
    assert top.status_code == 200 and b.slug in top.get_data(as_text=True)


def test_slow_statements_are_counted_per_tenant_for_staff(app, client, factory, staff_client, monkeypatch):
    """Every tenant statement at least PORTAL_SLOW_STATEMENT_MS long counts against its
    tenant; with the threshold at 0 ms every statement of the tenant's pages does."""
    from tests.factories import sign_in_tenant

    slow, quiet = factory.tenant(), factory.tenant()
    admin = factory.admin(slow)
    monkeypatch.setattr(app.extensions["portal.slow_statements"], "ms", 0)
    sign_in_tenant(client, slow, admin)
    assert client.get(f"/t/{slow.slug}/orders").status_code == 200
    monkeypatch.setattr(app.extensions["portal.slow_statements"], "ms", None)
    staff_client("viewer")
    monkeypatch.setitem(app.config, "PAGE_SIZE", 100_000)  # every served tenant of the run on one page
    body = client.get("/admin/top?sort=slow&dir=desc").get_data(as_text=True)
    rows = re.findall(r'<tr data-tenant="([^"]+)">(.*?)</tr>', body, re.S)
    assert rows[0][0] == slow.slug and "slowest" in rows[0][1]  # the most slow statements first
    quiet_row = dict(rows)[quiet.slug]
    assert re.search(r'data-measure="slow">0\s', quiet_row) and "slowest" not in quiet_row


def test_home_page_shows_the_plan_with_overrides_and_the_usage_page_s_figures(client, factory, override):
    tenant = factory.tenant(plan="basic")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    override(tenant, "limit:max_users", "15")
    override(tenant, "feature:analytics", "on")
    home = client.get(f"/t/{tenant.slug}/").get_data(as_text=True)
    usage = client.get(f"/t/{tenant.slug}/usage").get_data(as_text=True)
    users, limit = _meter(usage, "Users")
    assert limit == "15" and f"Users: {users} of 15" in home
    storage, storage_limit = _meter(usage, "Storage")
    assert f"Storage: {storage} of {storage_limit}" in home
    assert '<li class="on">analytics</li>' in home


def test_a_pool_tenant_s_storage_is_its_rows_and_grows_with_them(factory):
    from portal.services.metering import storage_bytes

    tenant, other = factory.tenant(plan="basic"), factory.tenant(plan="basic")
    before, other_before = storage_bytes(tenant, fresh=True), storage_bytes(other, fresh=True)
    assert before > 0
    for n in range(20):
        factory.order(tenant, number=n, customer="A customer with a name")
    assert storage_bytes(tenant, fresh=True) > before
    assert storage_bytes(other, fresh=True) == other_before  # another tenant's rows are not counted


def test_a_meter_at_or_over_its_limit_says_so(client, factory, override):
    """Issue 14, item 5: "4 of 2" is a meter `over` that says "over the limit" in words, on
    the tenant's Usage page and the staff Quotas page; at the limit, "at the limit"."""
    tenant = factory.tenant(plan="basic")
    admin = factory.admin(tenant)
    while user_count(tenant) < 4:
        factory.user(tenant)
    override(tenant, "limit:max_users", "2")
    sign_in_tenant(client, tenant, admin)
    body = client.get(f"/t/{tenant.slug}/usage").get_data(as_text=True)
    assert _meter(body, "Users") == ("4", "2")
    users = re.search(r'<div class="([^"]*)" data-measure="Users">(.*?)</div>', body, re.S)
    assert users.group(1) == "meter over" and '<strong class="over-label">over the limit</strong>' in users.group(2)
    assert '<progress max="2" value="2"' in users.group(2)
    storage = re.search(r'<div class="([^"]*)" data-measure="Storage">(.*?)</div>', body, re.S)
    assert storage.group(1) == "meter" and "over-label" not in storage.group(2)  # under its limit: plain

    override(tenant, "limit:max_users", "4")
    body = client.get(f"/t/{tenant.slug}/usage").get_data(as_text=True)
    users = re.search(r'<div class="([^"]*)" data-measure="Users">(.*?)</div>', body, re.S)
    assert users.group(1) == "meter over" and '<strong class="over-label">at the limit</strong>' in users.group(2)

    override(tenant, "limit:max_users", "2")
    sign_in_staff(client, factory.staff("viewer"))
    body = client.get("/admin/quotas").get_data(as_text=True)
    row = body.split(f">{tenant.slug}</a>")[1].split("</tr>")[0]
    users = re.search(r'<div class="([^"]*)" data-measure="users">(.*?)</div>', row, re.S)
    assert users.group(1) == "meter over" and "4 / 2" in users.group(2)
    assert '<strong class="over-label">over the limit</strong>' in users.group(2)
    storage = re.search(r'<div class="([^"]*)" data-measure="storage_mb">', row)
    assert storage.group(1) == "meter"
