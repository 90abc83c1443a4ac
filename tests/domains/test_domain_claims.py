"""Several tenants' claims of one domain name: each pending with its own token, the first
verified wins (by DNS or by staff), the others are dropped with an audit event in their
own tenant's log that does not say who won; a name verified elsewhere is refused; two
verifications at once end with one winner and an "already in use", never a 500."""
import secrets
import threading
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, select

from portal.dbsetup import owner_engine
from portal.domains import dns, services
from portal.domains.services import record_for_tenant as add_domain
from portal.extensions import db
from portal.models import AuditEvent, Tenant, TenantDomain
from portal.services.errors import Refused
from portal.tenancy.context import TenantRef, tenant_context
from portal.tenants.services import get_tenant
from tests.domains.helpers import DOMAIN, RECORD, claim, events, post, resolves_to
from tests.factories import sign_in_tenant, unique_slug


def _value(token):
    return f"tenancy-portal-verification={token}"


def _leaks(text, secrets_):
    return [s for s in secrets_ if s in text]


def _claim_with_its_record(client, factory, admin_of, fake_dns):
    """Another tenant, and this tenant's claim of DOMAIN with its right TXT record in DNS:
    (other tenant, this tenant's path prefix, the claim's id, the real DNS check)."""
    other = factory.tenant(plan="professional", name="Bravo Secret Co")
    prefix = f"/t/{admin_of.slug}"
    post(client, prefix, "/domains", {"domain": DOMAIN})
    mine = claim(admin_of, DOMAIN)
    fake_dns.records[RECORD] = [_value(mine.verification_token)]
    return other, prefix, mine.id, dns.check


@pytest.fixture()
def rivals(app, client, factory):
    """Tenants A and B, both with custom domains, each with an admin signed in on a
    client of its own."""
    a = factory.tenant(plan="professional", name="Alpha Shop")
    b = factory.tenant(plan="professional", name="Bravo Secret Co")
    a_admin, b_admin = factory.admin(a), factory.admin(b)
    b_client = app.test_client()
    sign_in_tenant(client, a, a_admin)
    sign_in_tenant(b_client, b, b_admin)
    return SimpleNamespace(a=a, b=b, a_client=client, b_client=b_client, a_prefix=f"/t/{a.slug}",
                           b_prefix=f"/t/{b.slug}", b_secrets=(b.slug, str(b.id), b.name, b_admin.email))


def _dropped_event_says_nothing_of(tenant, secrets_):
    """`tenant`'s one "domain.claim_dropped" event, checked to name none of `secrets_`."""
    [event] = events(tenant, "domain.claim_dropped")
    assert event.target == DOMAIN and event.tenant_id == tenant.id
    assert event.actor_kind == "system" and event.actor_label == "system" and event.ip is None
    assert event.reason == "Another tenant verified this domain first."
    assert event.details == {"cause": "verified by another tenant"}
    assert not _leaks(f"{event.actor_label} {event.reason} {event.details} {event.target}", secrets_)
    return event


def test_two_tenants_claim_one_name_and_the_first_to_verify_wins(rivals, fake_dns):
    r = rivals
    assert post(r.a_client, r.a_prefix, "/domains", {"domain": DOMAIN}).status_code == 302
    assert post(r.b_client, r.b_prefix, "/domains", {"domain": DOMAIN}).status_code == 302
    a_claim, b_claim = claim(r.a, DOMAIN), claim(r.b, DOMAIN)
    a_id, a_token, b_id, b_token = a_claim.id, a_claim.verification_token, b_claim.id, b_claim.verification_token
    assert a_claim.verified_at is None and b_claim.verified_at is None and a_token != b_token
    a_page = r.a_client.get(f"{r.a_prefix}/domains").get_data(as_text=True)
    b_page = r.b_client.get(f"{r.b_prefix}/domains").get_data(as_text=True)
    assert _value(a_token) in a_page and b_token not in a_page and "pending" in a_page
    assert _value(b_token) in b_page and a_token not in b_page and "pending" in b_page

    # The name's real owner publishes B's token; A's check finds it is not A's.
    fake_dns.records[RECORD] = [_value(b_token)]
    post(r.a_client, r.a_prefix, f"/domains/{a_id}/verify")
    assert claim(r.a, DOMAIN).last_check_error == "the TXT record does not carry this domain's token"
    assert "is not verified yet" in r.a_client.get(f"{r.a_prefix}/domains").get_data(as_text=True)
    assert post(r.b_client, r.b_prefix, f"/domains/{b_id}/verify").status_code == 302
    assert claim(r.b, DOMAIN).verified_at is not None
    assert resolves_to(r.b_client, DOMAIN, r.b)

    # A's claim was dropped in the same transaction, and A's log says so without naming B.
    assert claim(r.a, DOMAIN) is None
    a_page = r.a_client.get(f"{r.a_prefix}/domains").get_data(as_text=True)
    assert DOMAIN not in a_page and not _leaks(a_page, r.b_secrets + (b_token,))
    _dropped_event_says_nothing_of(r.a, r.b_secrets + (b_token,))
    audit_page = r.a_client.get(f"{r.a_prefix}/audit").get_data(as_text=True)
    assert "domain.claim_dropped" in audit_page and DOMAIN in audit_page
    assert "Another tenant verified this domain first." in audit_page
    assert not _leaks(audit_page, r.b_secrets + (b_token,))
    assert events(r.b, "domain.claim_dropped") == [] and len(events(r.b, "tenant.domain_verified")) == 1

    # A may not claim it again; A's old claim is gone (404, as any unknown id).
    response = post(r.a_client, r.a_prefix, "/domains", {"domain": DOMAIN})
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and f"{DOMAIN} is already in use." in body
    assert not _leaks(body, r.b_secrets)
    assert post(r.a_client, r.a_prefix, f"/domains/{a_id}/verify").status_code == 404
    assert claim(r.a, DOMAIN) is None and resolves_to(r.a_client, DOMAIN, r.b)


def test_a_claim_dropped_while_its_check_ran_is_told_in_use(client, factory, admin_of, fake_dns, monkeypatch):
    """Another tenant's verification of the name commits while this tenant's DNS lookup
    runs (here: staff record it for the other tenant): the TXT record is right, but the
    name is taken; the page says so, and the claim is gone."""
    other, prefix, mine_id, real_check = _claim_with_its_record(client, factory, admin_of, fake_dns)

    def check_while_another_verifies(*args):
        answer = real_check(*args)
        add_domain(get_tenant(other.id), DOMAIN)
        return answer

    monkeypatch.setattr(dns, "check", check_while_another_verifies)
    response = post(client, prefix, f"/domains/{mine_id}/verify")
    assert response.status_code == 302
    page = client.get(f"{prefix}/domains").get_data(as_text=True)
    assert f"{DOMAIN} is already in use." in page and "your claim of it was removed" in page
    assert not _leaks(page, (other.slug, other.name))
    assert claim(admin_of, DOMAIN) is None and events(admin_of, "tenant.domain_verified") == []
    _dropped_event_says_nothing_of(admin_of, (other.slug, str(other.id), other.name))
    assert resolves_to(client, DOMAIN, other)


@pytest.mark.parametrize("path", ["checked", "unique index"])
def test_a_name_verified_elsewhere_past_the_lock_is_in_use_not_a_500(client, factory, admin_of, fake_dns,
                                                                     monkeypatch, path):
    """A verified row of another tenant appears while the DNS lookup runs and this claim
    is left in place (as by a writer that skipped the claims' lock): the check after the
    lock sees it; and where that check is skipped too, the partial unique index refuses
    the second verified row (IntegrityError: rolled back, "already in use")."""
    other, prefix, mine_id, real_check = _claim_with_its_record(client, factory, admin_of, fake_dns)

    def check_while_a_row_appears(*args):
        answer = real_check(*args)
        db.session.add(TenantDomain(tenant_id=other.id, domain=DOMAIN, verified_at=db.func.now()))
        db.session.commit()
        return answer

    monkeypatch.setattr(dns, "check", check_while_a_row_appears)
    if path == "unique index":
        monkeypatch.setattr(services, "_verified_elsewhere", lambda domain, tenant_id: False)
    response = post(client, prefix, f"/domains/{mine_id}/verify")
    assert response.status_code == 302
    page = client.get(f"{prefix}/domains").get_data(as_text=True)
    assert f"{DOMAIN} is already in use." in page and not _leaks(page, (other.slug, other.name))
    assert claim(admin_of, DOMAIN) is None and events(admin_of, "tenant.domain_verified") == []
    _dropped_event_says_nothing_of(admin_of, (other.slug, str(other.id), other.name))
    assert claim(other, DOMAIN).verified_at is not None and resolves_to(client, DOMAIN, other)


def test_staff_record_a_name_pending_elsewhere_and_the_claims_are_dropped(rivals):
    r = rivals
    post(r.a_client, r.a_prefix, "/domains", {"domain": DOMAIN})
    db.session.add(TenantDomain(tenant_id=r.b.id, domain=DOMAIN, verification_token="b" * 32))
    db.session.commit()
    add_domain(get_tenant(r.b.id), DOMAIN)  # staff record the name for B, which claimed it too
    assert claim(r.b, DOMAIN).verified_at is not None and claim(r.b, DOMAIN).verification_token == "b" * 32
    assert claim(r.a, DOMAIN) is None
    assert resolves_to(r.a_client, DOMAIN, r.b)
    _dropped_event_says_nothing_of(r.a, r.b_secrets)
    assert events(r.b, "domain.claim_dropped") == []


def test_staff_record_a_name_only_claimed_elsewhere_for_a_tenant_without_a_claim(client, factory, admin_of):
    other = factory.tenant(plan="professional", name="Bravo Secret Co")
    post(client, f"/t/{admin_of.slug}", "/domains", {"domain": DOMAIN})
    add_domain(get_tenant(other.id), DOMAIN)
    assert claim(other, DOMAIN).verified_at is not None and claim(other, DOMAIN).verification_token is None
    assert claim(admin_of, DOMAIN) is None
    _dropped_event_says_nothing_of(admin_of, (other.slug, str(other.id), other.name))
    assert resolves_to(client, DOMAIN, other)


def test_staff_may_not_record_a_name_verified_elsewhere(client, factory):
    a = factory.tenant(plan="professional")
    b = factory.tenant(plan="professional")
    add_domain(get_tenant(a.id), DOMAIN)
    with pytest.raises(Refused) as refused:
        add_domain(get_tenant(b.id), DOMAIN.upper())
    assert refused.value.message == f"{DOMAIN} is already in use: verified for tenant {a.slug}."
    db.session.rollback()
    assert claim(a, DOMAIN).verified_at is not None and claim(b, DOMAIN) is None
    with pytest.raises(Refused) as refused:
        add_domain(get_tenant(a.id), DOMAIN)
    assert "already recorded for this tenant" in refused.value.message
    db.session.rollback()
    assert resolves_to(client, DOMAIN, a)


def test_two_verifications_at_once_one_wins_and_the_other_is_told_in_use(app, fake_dns, monkeypatch):
    """Two tenants' DNS answers arrive together and both claims go for the name at once,
    on two connections with real commits (so neither `conn` nor `factory`: what this
    makes is removed in the `finally`). One is verified; the other is told "already in
    use" and its claim is dropped; nothing fails."""
    owner = owner_engine(app.config["DATABASE_URL"])
    tenant_ids = []
    try:
        with app.app_context():
            tenants = [Tenant(slug=unique_slug("race"), name=f"Race {n}", plan_code="professional")
                       for n in range(2)]
            db.session.add_all(tenants)
            db.session.flush()
            tenant_ids = [t.id for t in tenants]
            claims = [TenantDomain(tenant_id=t.id, domain=DOMAIN, verification_token=secrets.token_hex(16))
                      for t in tenants]
            db.session.add_all(claims)
            db.session.commit()
            refs = [TenantRef.of(t) for t in tenants]
            claim_ids = [c.id for c in claims]
            fake_dns.records[RECORD] = [_value(c.verification_token) for c in claims]
        barrier = threading.Barrier(2, timeout=10)
        real_check = dns.check

        def check_then_meet(*args):
            answer = real_check(*args)
            barrier.wait()  # both answers in hand before either goes on
            return answer

        monkeypatch.setattr(dns, "check", check_then_meet)
        outcomes = [None, None]

        def verify(n):
            with app.app_context(), tenant_context(refs[n]):
                try:
                    row = services.verify(claim_ids[n], ("system", None, "race test"))
                    outcomes[n] = "verified" if row.verified_at is not None else row.last_check_error
                except Refused as exc:
                    outcomes[n] = exc.message
                except Exception as exc:  # noqa: BLE001 - reported below, not swallowed
                    outcomes[n] = repr(exc)

        threads = [threading.Thread(target=verify, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes, key=str)[1] == "verified", outcomes
        winner = outcomes.index("verified")
        loser = 1 - winner
        assert outcomes[loser].startswith(f"{DOMAIN} is already in use."), outcomes
        with owner.connect() as c:
            rows = c.execute(select(TenantDomain.tenant_id, TenantDomain.verified_at)
                             .where(TenantDomain.domain == DOMAIN)).all()
            assert [(tenant_id, verified_at is not None) for tenant_id, verified_at in rows] == \
                [(tenant_ids[winner], True)]
            dropped = c.execute(select(AuditEvent.tenant_id).where(
                AuditEvent.action == "domain.claim_dropped", AuditEvent.tenant_id.in_(tenant_ids))).scalars().all()
            assert dropped == [tenant_ids[loser]]
    finally:
        with owner.begin() as c:
            if tenant_ids:
                c.execute(delete(AuditEvent).where(AuditEvent.tenant_id.in_(tenant_ids)))
                c.execute(delete(Tenant).where(Tenant.id.in_(tenant_ids)))  # their domains go with them
        owner.dispose()
        with app.app_context():
            app.extensions["portal.tenant_lookup"].invalidate_domains([DOMAIN])
            app.extensions["portal.tenant_lookup"].clear_local()
