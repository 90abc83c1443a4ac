"""Tenant admins' custom domains: added pending, verified by a DNS TXT record (asked of a
real DNS server on 127.0.0.1), routed only once verified, removed; bad input,
permissions, the plan's feature, and another tenant's domains."""
import pytest
from sqlalchemy import func, select

from portal.domains.services import record_for_tenant as add_domain
from portal.extensions import db
from portal.models import AuditEvent, TenantDomain
from portal.tenants.services import get_tenant
from tests.conftest import BASE_DOMAIN
from tests.domains.helpers import DOMAIN, RECORD
from tests.domains.helpers import claim as _claim
from tests.domains.helpers import domains as _domains
from tests.domains.helpers import post as _post
from tests.domains.helpers import resolves_to as _resolves_to
from tests.domains.helpers import row as _row
from tests.factories import csrf_token, sign_in_tenant


def test_add_then_verify_by_dns_then_remove(client, admin_of, fake_dns):
    tenant, prefix = admin_of, f"/t/{admin_of.slug}"
    response = _post(client, prefix, "/domains", {"domain": "Shop.Customer-Example.com."})
    assert response.status_code == 302
    row = _row(DOMAIN)
    assert row.tenant_id == tenant.id and row.verified_at is None and len(row.verification_token) >= 32
    page = client.get(f"{prefix}/domains").get_data(as_text=True)
    assert DOMAIN in page and "pending" in page
    assert RECORD in page and f"tenancy-portal-verification={row.verification_token}" in page
    assert not _resolves_to(client, DOMAIN, tenant)  # claimed is not verified

    # No record at all.
    assert _post(client, prefix, f"/domains/{row.id}/verify").status_code == 302
    page = client.get(f"{prefix}/domains").get_data(as_text=True)
    assert f"no TXT record found at {RECORD}" in page and "pending" in page
    row = _row(DOMAIN)
    assert row.verified_at is None and row.last_checked_at is not None
    assert row.last_check_error == f"no TXT record found at {RECORD}"
    assert RECORD in fake_dns.queries  # asked of our server, not the internet
    assert not _resolves_to(client, DOMAIN, tenant)

    # A record with another token.
    fake_dns.records[RECORD] = ["tenancy-portal-verification=0123456789abcdef0123456789abcdef"]
    _post(client, prefix, f"/domains/{row.id}/verify")
    page = client.get(f"{prefix}/domains").get_data(as_text=True)
    assert "the TXT record does not carry this domain&#39;s token" in page
    assert _row(DOMAIN).verified_at is None and not _resolves_to(client, DOMAIN, tenant)

    # The right token, among other TXT values of the name.
    fake_dns.records[RECORD] = ["v=spf1 -all", f"tenancy-portal-verification={row.verification_token}"]
    _post(client, prefix, f"/domains/{row.id}/verify")
    row = _row(DOMAIN)
    assert row.verified_at is not None and row.last_check_error is None
    page = client.get(f"{prefix}/domains").get_data(as_text=True)
    assert "verified" in page and f"/domains/{row.id}/verify" not in page  # nothing left to verify
    # Routes at once: the "unknown host" the lookup cached a moment ago was forgotten.
    assert _resolves_to(client, DOMAIN, tenant)

    assert _post(client, prefix, f"/domains/{row.id}/remove").status_code == 302
    assert _row(DOMAIN) is None
    assert not _resolves_to(client, DOMAIN, tenant)  # the cached route was forgotten too

    # Each step is in the tenant's own audit log.
    actions = db.session.execute(select(AuditEvent.action).where(
        AuditEvent.tenant_id == tenant.id, AuditEvent.target == DOMAIN)).scalars().all()
    assert sorted(actions) == sorted(["tenant.domain_added", "tenant.domain_check_failed",
                                      "tenant.domain_check_failed", "tenant.domain_verified",
                                      "tenant.domain_removed"])
    audit_page = client.get(f"{prefix}/audit").get_data(as_text=True)
    assert "tenant.domain_verified" in audit_page and DOMAIN in audit_page


def test_a_failing_lookup_is_said_and_changes_nothing_else(client, admin_of, fake_dns):
    prefix = f"/t/{admin_of.slug}"
    _post(client, prefix, "/domains", {"domain": DOMAIN})
    fake_dns.failing.add(RECORD)
    _post(client, prefix, f"/domains/{_row(DOMAIN).id}/verify")
    row = _row(DOMAIN)
    assert row.verified_at is None and row.last_check_error.startswith("DNS lookup failed: ")
    assert "DNS lookup failed: " in client.get(f"{prefix}/domains").get_data(as_text=True)
    assert "127.0.0.1" not in row.last_check_error  # our nameservers are not the tenant's business


def test_settings_page_links_to_domains(client, admin_of):
    page = client.get(f"/t/{admin_of.slug}/settings").get_data(as_text=True)
    assert f'href="/t/{admin_of.slug}/domains">Custom domains →' in page


BAD_DOMAINS = [
    ("", "This field is required"),
    ("not a domain", "Enter a domain name such as"),
    ("https://shop.example.com", "without http://"),
    ("shop.example.com/path", "without http://"),
    ("shop.example.com:8443", "without a port"),
    ("192.0.2.10", "not an IP address"),
    ("[2001:db8::1]", "not an IP address"),
    ("localhost", "at least two parts"),
    ("example", "at least two parts"),
    ("shop..example.com", "1 to 63 characters"),
    ("a" * 64 + ".example.com", "1 to 63 characters"),
    (".".join(["a" * 63] * 4), "at most 253 characters"),
    ("-shop.example.com", "Enter a domain name such as"),
    ("under_score.example.com", "Enter a domain name such as"),
    ("shop.example.123", "Enter a domain name such as"),
    (BASE_DOMAIN, "the portal&#39;s own"),
    (f"shop.{BASE_DOMAIN}", "the portal&#39;s own"),
    (f"admin.{BASE_DOMAIN}", "the portal&#39;s own"),
]


@pytest.mark.parametrize("domain, message", BAD_DOMAINS)
def test_bad_domains_are_refused_beside_the_field(client, admin_of, domain, message):
    response = _post(client, f"/t/{admin_of.slug}", "/domains", {"domain": domain})
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and message in body, body
    assert 'id="domain-error"' in body  # beside the field
    assert _domains(admin_of) == []


def test_an_international_domain_is_stored_idna_encoded(client, admin_of):
    assert _post(client, f"/t/{admin_of.slug}", "/domains", {"domain": "Bücher.Example"}).status_code == 302
    assert [d.domain for d in _domains(admin_of)] == ["xn--bcher-kva.example"]


def test_a_domain_verified_elsewhere_is_in_use_without_naming_who(client, factory, admin_of):
    other = factory.tenant(plan="professional", name="Rival Company")
    add_domain(get_tenant(other.id), "verified.rival.example")
    db.session.add(TenantDomain(tenant_id=other.id, domain="pending.rival.example", verification_token="t" * 32))
    db.session.commit()
    prefix = f"/t/{admin_of.slug}"
    response = _post(client, prefix, "/domains", {"domain": "Verified.Rival.Example"})
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and "verified.rival.example is already in use." in body
    assert other.slug not in body and "Rival Company" not in body
    # A claim elsewhere that is still pending blocks no one: claimed here too, token of its own.
    assert _post(client, prefix, "/domains", {"domain": "Pending.Rival.Example"}).status_code == 302
    ours = _claim(admin_of, "pending.rival.example")
    assert ours.verified_at is None and ours.verification_token not in ("t" * 32, None)
    _post(client, prefix, "/domains", {"domain": DOMAIN})
    response = _post(client, prefix, "/domains", {"domain": DOMAIN})
    assert response.status_code == 400 and "already added" in response.get_data(as_text=True)
    response = _post(client, prefix, "/domains", {"domain": "pending.rival.example"})
    assert response.status_code == 400 and "already added" in response.get_data(as_text=True)
    assert sorted(d.domain for d in _domains(admin_of)) == ["pending.rival.example", DOMAIN]
    assert _claim(other, "pending.rival.example").verification_token == "t" * 32  # theirs untouched


def test_at_most_ten_domains(client, admin_of):
    for n in range(10):
        db.session.add(TenantDomain(tenant_id=admin_of.id, domain=f"d{n}.example.com", verification_token="x"))
    db.session.commit()
    response = _post(client, f"/t/{admin_of.slug}", "/domains", {"domain": "eleven.example.com"})
    assert response.status_code == 400 and "at most 10 custom domains" in response.get_data(as_text=True)
    assert len(_domains(admin_of)) == 10


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_roles_without_settings_permissions_get_403(client, factory, fake_dns, role):
    tenant = factory.tenant(plan="professional")
    db.session.add(TenantDomain(tenant_id=tenant.id, domain=DOMAIN, verification_token="tok"))
    db.session.commit()
    fake_dns.records[RECORD] = ["tenancy-portal-verification=tok"]  # a verify let through would succeed
    sign_in_tenant(client, tenant, factory.user(tenant, role=role))
    prefix, row_id = f"/t/{tenant.slug}", _row(DOMAIN).id
    assert client.get(f"{prefix}/domains").status_code == 403
    assert _post(client, prefix, "/domains", {"domain": "other.example.com"}).status_code == 403
    assert _post(client, prefix, f"/domains/{row_id}/verify").status_code == 403
    assert _post(client, prefix, f"/domains/{row_id}/remove").status_code == 403
    row = _row(DOMAIN)
    assert row is not None and row.verified_at is None and len(_domains(tenant)) == 1


def test_a_plan_without_custom_domains_says_so(client, factory):
    tenant = factory.tenant(plan="basic")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    response = client.get(f"/t/{tenant.slug}/domains")
    assert response.status_code == 403 and "Custom domains is not part of your plan" in response.get_data(as_text=True)
    assert _post(client, f"/t/{tenant.slug}", "/domains", {"domain": DOMAIN}).status_code == 403
    assert _domains(tenant) == []


def test_staff_recorded_domains_are_verified_at_once(client, factory, admin_of):
    add_domain(get_tenant(admin_of.id), "staff.customer-example.com")
    assert _row("staff.customer-example.com").verified_at is not None
    assert _resolves_to(client, "staff.customer-example.com", admin_of)
    page = client.get(f"/t/{admin_of.slug}/domains").get_data(as_text=True)
    assert "staff.customer-example.com" in page and "recorded by our staff" in page
    # A domain the tenant claimed but could not verify: staff's word verifies it.
    _post(client, f"/t/{admin_of.slug}", "/domains", {"domain": DOMAIN})
    assert not _resolves_to(client, DOMAIN, admin_of)
    add_domain(get_tenant(admin_of.id), DOMAIN)
    assert _row(DOMAIN).verified_at is not None and _resolves_to(client, DOMAIN, admin_of)


def test_a_cannot_see_verify_or_remove_bs_domains(client, factory, fake_dns):
    a = factory.tenant(plan="professional")
    b = factory.tenant(plan="professional", name="Bravo Secret Co")
    a_admin = factory.admin(a)
    add_domain(get_tenant(a.id), "a-own.example.com")
    add_domain(get_tenant(b.id), "b-verified.example.net")
    b_pending = TenantDomain(tenant_id=b.id, domain="b-pending.example.net", verification_token="btoken")
    db.session.add(b_pending)
    db.session.commit()
    # B's record is in DNS: a verify let through by mistake would succeed.
    fake_dns.records["_tenancy-portal.b-pending.example.net"] = ["tenancy-portal-verification=btoken"]
    b_ids = [b_pending.id, _row("b-verified.example.net").id]
    secrets = (b.slug, b.name, "b-pending.example.net", "b-verified.example.net", "btoken")

    addresses = [  # (prefix, request kwargs): A's path prefix, A's subdomain, A's custom domain
        (f"/t/{a.slug}", {}),
        ("", {"base_url": f"http://{a.slug}.{BASE_DOMAIN}"}),
        ("", {"base_url": "http://a-own.example.com"}),
    ]
    for prefix, kwargs in addresses:
        sign_in_tenant(client, a, a_admin, prefix=prefix, **kwargs)
        listing = client.get(f"{prefix}/domains", **kwargs)
        assert listing.status_code == 200 and "a-own.example.com" in listing.get_data(as_text=True)
        assert not [s for s in secrets if s in listing.get_data(as_text=True)]
        for b_id in b_ids:
            for action in ("verify", "remove"):
                response = _post(client, prefix, f"/domains/{b_id}/{action}", **kwargs)
                assert response.status_code == 404, (prefix, kwargs, action)
                assert not [s for s in secrets if s in response.get_data(as_text=True)], (prefix, action)
        assert _post(client, prefix, "/domains/not-a-uuid/verify", **kwargs).status_code == 404
        # B named in X-Tenant-ID on A's address: refused by the resolver, B not named.
        token = csrf_token(client.get(f"{prefix}/domains", **kwargs).get_data(as_text=True))
        for header in (b.slug, str(b.id)):
            response = client.post(f"{prefix}/domains/{b_pending.id}/verify", data={"csrf_token": token},
                                   headers={"X-Tenant-ID": header}, **kwargs)
            assert response.status_code in (400, 404)
            assert not [s for s in secrets if s in response.get_data(as_text=True)]
    pending = _row("b-pending.example.net")
    assert pending is not None and pending.verified_at is None and pending.last_checked_at is None
    assert _row("b-verified.example.net") is not None
    assert db.session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.tenant_id == b.id, AuditEvent.action.like("tenant.domain_%"),
        AuditEvent.actor_kind == "tenant_user")).scalar_one() == 0
