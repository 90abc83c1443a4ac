"""Each finding of the black-box attack run (issue 10), through the door the attacker used
(HTTP, the real stack): the status, the message, and that nothing changed.
(Sessions: tests/auth/test_sessions.py; a tenant's pages under another's host:
tests/tenancy/test_resolve.py.)"""
import uuid
import zipfile

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, insert, select, text

from portal.extensions import db
from portal.lifecycle import exports, retire
from portal.models import AuditEvent, PlanRequest, Tenant, TenantOverride
from portal.services import jobqueue
from portal.tenancy.data import Event, TenantRole, TenantUser
from portal.tenancy.placement import tenant_session, tenant_transaction
from portal.tenants.services import get_tenant
from tests.conftest import BASE_DOMAIN
from tests.factories import PASSWORD, auth, csrf_token, make_token, sign_in_staff, sign_in_tenant

# -- sign-in ---------------------------------------------------------------------------------


def _sign_in(client, url, email, password, nxt=None, **kwargs):
    query = f"?next={nxt}" if nxt is not None else ""
    page = client.get(url + query, **kwargs)
    assert page.status_code == 200
    token = csrf_token(page.get_data(as_text=True))
    next_value = page.get_data(as_text=True).split('name="next"')[1].split('value="')[1].split('"')[0] \
        if nxt is not None else ""
    return client.post(url, data={"email": email, "password": password, "csrf_token": token,
                                  "next": next_value.replace("&amp;", "&")}, **kwargs)


@pytest.mark.parametrize("evil", ["/%09/evil.example", "/%0A/x", "/%0D/x", "/%5C%5Cevil.example",
                                  "%2F%2Fevil.example", "/%2509/evil.example", "/%E2%80%A8/evil.example",
                                  "https:evil.example", "/%20/evil.example"])
def test_next_never_leaves_the_site_nor_breaks_the_header(client, factory, evil):
    tenant = factory.tenant()
    admin, staff = factory.admin(tenant), factory.staff()
    tenant_answer = _sign_in(client, f"/t/{tenant.slug}/login", admin.email, PASSWORD, evil)
    assert tenant_answer.status_code == 302
    assert tenant_answer.headers["Location"] == f"/t/{tenant.slug}/", evil
    staff_answer = _sign_in(client, "/admin/login", staff.email, PASSWORD, evil)
    assert staff_answer.status_code == 302 and staff_answer.headers["Location"] == "/admin/tenants", evil


def test_a_good_next_is_followed(client, factory):
    staff = factory.staff()
    answer = _sign_in(client, "/admin/login", staff.email, PASSWORD, "/admin/audit%3Faction%3Dx")
    assert answer.headers["Location"] == "/admin/audit?action=x"


def test_every_refusal_costs_one_verify_and_no_hashing(client, factory, monkeypatch):
    """Timing told known emails apart: the dummy hash was made afresh on each refusal.
    Counted, not timed: one verification per refusal, and no hash made, whatever the reason."""
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    invited = factory.user(tenant)  # invited: no password yet
    with tenant_transaction(tenant) as session:
        session.get(TenantUser, (tenant.id, invited.id)).password_hash = None
    _sign_in(client, f"/t/{tenant.slug}/login", "warm-up@nowhere.example", "x" * 12)  # the dummy hash, made once
    calls = {"hash": 0, "verify": 0}
    real_hash, real_verify = PasswordHasher.hash, PasswordHasher.verify

    def counting(name, real):
        def call(self, *args, **kwargs):
            calls[name] += 1
            return real(self, *args, **kwargs)
        return call

    monkeypatch.setattr(PasswordHasher, "hash", counting("hash", real_hash))
    monkeypatch.setattr(PasswordHasher, "verify", counting("verify", real_verify))
    for email in ("nobody@nowhere.example", admin.email, invited.email):
        calls.update(hash=0, verify=0)
        answer = _sign_in(client, f"/t/{tenant.slug}/login", email, "wrong password!")
        assert answer.status_code == 401
        assert calls == {"hash": 0, "verify": 1}, email


def test_failures_on_one_tenant_lock_neither_the_console_nor_another_tenant(client, factory, app, monkeypatch):
    a, b = factory.tenant(), factory.tenant()
    b_admin, staff = factory.admin(b), factory.staff()
    monkeypatch.setitem(app.config, "LOGIN_FAILURES_PER_ADDRESS", 5)
    for n in range(5):
        _sign_in(client, f"/t/{a.slug}/login", f"guess{n}@nowhere.example", "wrong")
    locked = _sign_in(client, f"/t/{a.slug}/login", "another@nowhere.example", "wrong")
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    assert _sign_in(client, f"/t/{b.slug}/login", b_admin.email, PASSWORD).status_code == 302
    assert _sign_in(client, "/admin/login", staff.email, PASSWORD).status_code == 302


def test_an_account_locked_from_one_address_opens_from_another(client, factory, app):
    staff = factory.staff()
    attacker = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    for _ in range(app.config["LOGIN_FAILURES_PER_ACCOUNT"]):
        _sign_in(client, "/admin/login", staff.email, "wrong", **attacker)
    assert "Too many" in _sign_in(client, "/admin/login", staff.email, PASSWORD, **attacker).get_data(as_text=True)
    owner = app.test_client()
    assert _sign_in(owner, "/admin/login", staff.email, PASSWORD,
                    environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 302


# -- hosts and paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["a" * 300 + f".{BASE_DOMAIN}", f"ac\x00me.{BASE_DOMAIN}", "bad host",
                                  "under_score.example", f"acme.{BASE_DOMAIN}:port", "[zz::1]"])
def test_a_host_that_is_no_dns_name_is_400(client, host):
    for path in ("/login", "/api/v1/status", "/admin/login"):
        answer = client.get(path, headers={"Host": host})
        assert answer.status_code == 400, (host, path)
        assert "not a valid host name" in answer.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/admin/tenants", "/admin/audit", "/admin/outbox"])
def test_a_huge_page_number_is_a_page_not_a_500(client, factory, url):
    sign_in_staff(client, factory.staff())
    for page in ("99999999999999999999", "-3", "1e9", "abc", "100001"):
        assert client.get(f"{url}?page={page}").status_code == 200, (url, page)


def test_a_huge_page_number_on_a_tenant_s_audit_log(client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    assert client.get(f"/t/{tenant.slug}/audit?page=99999999999999999999").status_code == 200


# -- limits -------------------------------------------------------------------------------------


def _set_override(client, tenant, key, value):
    page = client.get(f"/admin/tenants/{tenant.id}")
    return client.post(f"/admin/tenants/{tenant.id}/overrides", data={
        "key": key, "value": value, "until": "", "reason": "attack",
        "csrf_token": csrf_token(page.get_data(as_text=True))})


@pytest.mark.parametrize("value", ["2147483648", "99999999999999999999", "-1", "50"])
def test_an_out_of_range_limit_override_is_refused_with_its_range(client, factory, value):
    tenant = factory.tenant()
    sign_in_staff(client, factory.staff())
    answer = _set_override(client, tenant, "limit:statement_timeout_ms", value)
    body = client.get(answer.headers["Location"]).get_data(as_text=True) if answer.status_code == 302 \
        else answer.get_data(as_text=True)
    assert "The range is 100 to 3,600,000" in body
    assert db.session.execute(select(func.count()).select_from(TenantOverride)
                              .where(TenantOverride.tenant_id == tenant.id)).scalar_one() == 0


def test_a_stored_out_of_range_limit_never_turns_a_page_into_a_500(client, factory, app):
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    token = make_token(tenant, admin)
    for name, value in (("statement_timeout_ms", 2147483648), ("db_connections", 10**12),
                        ("requests_per_minute", 10**12), ("storage_mb", "lots")):
        db.session.add(TenantOverride(tenant_id=tenant.id, key=f"limit:{name}", value=value, reason="stored before",
                                      created_by="test"))
    db.session.flush()
    app.extensions["portal.tenant_lookup"].invalidate(tenant.id, tenant.slug)
    sign_in_tenant(client, tenant, admin)
    for url in (f"/t/{tenant.slug}/", f"/t/{tenant.slug}/users", f"/t/{tenant.slug}/orders", f"/t/{tenant.slug}/usage"):
        assert client.get(url).status_code == 200, url
    assert client.get("/api/v1/orders", headers=auth(token)).status_code == 200
    sign_in_staff(client, factory.staff())
    for url in (f"/admin/tenants/{tenant.id}", "/admin/quotas", "/admin/top"):
        assert client.get(url).status_code == 200, url


# -- API JSON -----------------------------------------------------------------------------------


@pytest.fixture()
def api_tenant(factory):
    tenant = factory.tenant(plan="professional")
    return tenant, make_token(tenant, factory.admin(tenant))


def _counts(tenant):
    from portal.tenancy.data import Order
    with tenant_session(tenant) as session:
        return tuple(session.execute(select(func.count()).select_from(model)).scalar_one() for model in (Event, Order))


@pytest.mark.parametrize("path, body, field", [
    ("/api/v1/orders", '{"customer": "\\ud800", "amount_cents": 1}', "customer"),
    ("/api/v1/orders", '{"customer\\ud800": "x", "amount_cents": 1}', "body"),
    ("/api/v1/orders", "[" * 100_000, "body"),
    ("/api/v1/orders", '{"customer": "x", "amount_cents": 1e309}', "body"),
    ("/api/v1/events", '{"events": [{"name": "x", "properties": {"v": NaN}}]}', "body"),
    ("/api/v1/events", '{"events": [{"name": "x", "properties": {"v": Infinity}}]}', "body"),
    ("/api/v1/events", '{"events": [{"name": "\\ud800"}]}', "events[0].name"),
    ("/api/v1/events", '{"events": [{"name": "x", "occurred_at": "1970-01-01T00:00:00+23:59"}]}',
     "events[0].occurred_at"),
    ("/api/v1/events", '{"events": [{"name": "x", "occurred_at": "0001-01-01T00:00:00+14:00"}]}',
     "events[0].occurred_at"),
    ("/api/v1/events", '{"events": [{"name": "x", "occurred_at": "9999-12-31T23:59:59-14:00"}]}',
     "events[0].occurred_at"),
    ("/api/v1/events", '{"events": [{"name": "ok"}, {"name": "x", "properties": ' + '{"a":' * 40 + "1" + "}" * 40
     + "}]}", "events[1].properties" + ".a" * 30),
])
def test_hostile_json_is_a_400_naming_the_field_and_stores_nothing(client, api_tenant, path, body, field):
    tenant, token = api_tenant
    before = _counts(tenant)
    answer = client.post(path, data=body, content_type="application/json", headers=auth(token))
    assert answer.status_code == 400, answer.get_data(as_text=True)[:300]
    assert answer.json["error"]["field"] == field
    assert _counts(tenant) == before


def test_a_stored_event_at_the_edge_of_time_exports_and_deprovisions(app, conn, factory, export_folder):
    tenant = factory.tenant()
    with tenant_transaction(tenant) as session:
        for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
            session.execute(insert(Event).values(tenant_id=tenant.id, id=uuid.uuid4(), name="edge", properties={},
                                                 occurred_at=text(f"'{when}'::timestamptz")))
    row = get_tenant(tenant.id)
    path, manifest = exports.write_export(row)
    assert manifest["tables"]["events"]["rows"] == 2
    with zipfile.ZipFile(path) as archive:
        events = archive.read("tables/events.csv").decode()
    assert "0001-12-31 10:00:00+00 BC" in events and "10000-01-01 13:59:59+00" in events
    job = retire.request_deprovision(row, tenant.slug, ("system", None, "test"))
    jobqueue.run(job, retire.deprovision)
    db.session.refresh(job)
    assert job.state == "succeeded", job.error
    assert get_tenant(tenant.id).status == "archived"


@pytest.fixture()
def export_folder(app, tmp_path):
    previous, app.config["PORTAL_EXPORT_DIR"] = app.config["PORTAL_EXPORT_DIR"], str(tmp_path / "exports")
    yield tmp_path / "exports"
    app.config["PORTAL_EXPORT_DIR"] = previous


# -- roles, plans, slugs --------------------------------------------------------------------------


def _post(client, page, url, data):
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def test_a_role_named_new_is_a_role_not_the_new_role_page(client, factory):
    tenant = factory.tenant(plan="enterprise")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    for name in ("New", "NEW!"):
        answer = _post(client, f"/t/{tenant.slug}/roles/new", f"/t/{tenant.slug}/roles/new",
                       {"name": name, "permissions": ["orders.view"]})
        assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    with tenant_session(tenant) as session:
        keys = dict(session.execute(select(TenantRole.name, TenantRole.key)).all())
    assert set(keys) == {"New", "NEW!"} and "new" not in keys.values()
    for name, key in keys.items():
        page = client.get(f"/t/{tenant.slug}/roles/{key}").get_data(as_text=True)
        assert f'value="{name}"' in page  # its own edit page
    assert 'value=""' in client.get(f"/t/{tenant.slug}/roles/new").get_data(as_text=True)


@pytest.mark.parametrize("name", ["Аdmin", "ADMIN", "vіewer", "Ｍｅｍｂｅｒ", "admin\u200b"])
def test_a_role_name_that_reads_as_a_built_in_one_is_refused(client, factory, name):
    tenant = factory.tenant(plan="enterprise")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    answer = _post(client, f"/t/{tenant.slug}/roles/new", f"/t/{tenant.slug}/roles/new",
                   {"name": name, "permissions": ["orders.view"]})
    assert answer.status_code == 400 and "is a built-in role" in answer.get_data(as_text=True)
    with tenant_session(tenant) as session:
        assert session.execute(select(func.count()).select_from(TenantRole)).scalar_one() == 0


@pytest.mark.parametrize("plan", ["", "no-such-plan", "x" * 10_000])
def test_asking_for_an_invalid_plan_says_so(client, factory, plan):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    answer = _post(client, f"/t/{tenant.slug}/plan", f"/t/{tenant.slug}/plan", {"plan": plan})
    assert answer.status_code == 400 and "Choose one of the plans offered." in answer.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(PlanRequest)
                              .where(PlanRequest.tenant_id == tenant.id)).scalar_one() == 0


@pytest.mark.parametrize("slug", ["registry", "postgres", "tenant-data", "metrics", "template1"])
def test_the_portal_s_own_names_are_not_slugs(client, factory, slug):
    sign_in_staff(client, factory.staff())
    answer = _post(client, "/admin/tenants/new", "/admin/tenants/new", {
        "slug": slug, "name": "Sneaky", "plan": "basic", "admin_email": "a@b.example", "tier": "", "placement": ""})
    assert answer.status_code == 400 and "is reserved" in answer.get_data(as_text=True)
    assert db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).first() is None


def test_api_tokens_stop_while_suspended_and_work_again_after_resume(client, factory):
    """Decided (docs/api.md): a suspension refuses every request, tokens included; a resume
    lets the tenant's integrations run again without new tokens (revoking is the admin's)."""
    from portal.lifecycle import states
    tenant = factory.tenant(plan="professional")
    token = make_token(tenant, factory.admin(tenant))
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 200
    states.suspend(get_tenant(tenant.id), "unpaid", ("system", None, "test"))
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 403
    states.resume(get_tenant(tenant.id), "paid", ("system", None, "test"))
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 200
    assert db.session.execute(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.tenant_id == tenant.id,
                                     AuditEvent.action.in_(("tenant.suspended", "tenant.resumed")))).scalar_one() == 2
