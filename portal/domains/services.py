"""A tenant's custom domains: what a valid one is, and adding, verifying, removing them.

A domain a tenant admin adds is a claim, pending until a DNS TXT record carrying its
token is seen (`portal/domains/dns.py`); only verified domains route
(`portal/tenancy/lookup.py`). Several tenants may claim one name, each with its own
token; the first claim verified wins, and the other tenants' claims of the name are
dropped in the same transaction. A name is unique among verified domains (a partial
unique index), so a claim never blocks anyone. Domains live in the registry, so these
are registry transactions, each with its audit events.
"""
import ipaddress
import re
import secrets
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError

from portal.domains import dns
from portal.extensions import db
from portal.models import TenantDomain
from portal.services import audit_events
from portal.services.errors import NotFound, Refused
from portal.services.rows import registry_row
from portal.tenancy.context import require_tenant
from portal.tenancy.lookup import forget_domains, forget_tenant

MAX_DOMAINS = 10  # per tenant, staff-recorded ones included
# The first key of the transaction-scoped advisory lock taken on a name (the second is
# the name's hash) while its claims change: any constant, the same in every process.
CLAIM_LOCK_KEY = 0x0D0C1A17
DROPPED_REASON = "Another tenant verified this domain first."
SYSTEM = ("system", None, "system")  # the actor of a dropped claim: no one of the other tenant
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_EXAMPLE = "shop.example.com"


def check_domain(text):
    """`text` as a domain name we may serve (lowercase, IDNA-encoded), or Refused."""
    raw = (text or "").strip().lower()
    if _is_ip(raw):
        raise Refused("Enter a domain name, not an IP address.", "domain")
    if "://" in raw or "/" in raw:
        raise Refused(f"Enter the domain name only, without http:// or a path: {_EXAMPLE}.", "domain")
    if ":" in raw:
        raise Refused(f"Enter the domain name without a port: {_EXAMPLE}.", "domain")
    raw = raw.rstrip(".")
    try:
        domain = raw.encode("idna").decode("ascii")
    except UnicodeError:
        # Python's IDNA codec refuses an empty label, a label over 63, odd characters.
        raise Refused("Each part of a domain name (between dots) has 1 to 63 characters.", "domain") from None
    labels = domain.split(".")
    if not raw or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise Refused(f"Enter a domain name such as {_EXAMPLE}: letters, digits and hyphens between dots.",
                      "domain")
    if len(labels) < 2:
        raise Refused(f"Enter a domain name with at least two parts, such as {_EXAMPLE}.", "domain")
    if len(domain) > 253:
        raise Refused("A domain name has at most 253 characters.", "domain")
    base = current_app.config["PORTAL_BASE_DOMAIN"].lower()
    if domain == base or domain.endswith("." + base) or domain in current_app.config["ADMIN_HOSTS"]:
        raise Refused(f"Domains under {base} are the portal's own; enter another domain.", "domain")
    return domain


def _is_ip(text):
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def listing():
    """The current tenant's domains, with what each one's TXT record should read."""
    rows = db.session.execute(
        select(TenantDomain).where(TenantDomain.tenant_id == require_tenant().id).order_by(TenantDomain.domain)
    ).scalars().all()
    return [DomainView(row) for row in rows]


class DomainView:
    """A row as the page shows it: its state and the record to create."""

    def __init__(self, row):
        self.id, self.domain = row.id, row.domain
        self.verified = row.verified_at is not None
        self.state = "verified" if self.verified else "pending"
        self.last_checked_at, self.last_check_error = row.last_checked_at, row.last_check_error
        self.record_name = dns.record_name(row.domain)
        # Staff-recorded domains carry no token: verified by staff's word, no record asked.
        self.record_value = dns.record_value(row.verification_token) if row.verification_token else None


def _in_use(domain):
    """Refused: `domain` is another tenant's (never say whose)."""
    return Refused(f"{domain} is already in use.", "domain")


def add(text, actor):
    """Claim a domain for the current tenant: pending, with a fresh token of its own. A
    name other tenants merely claimed may be claimed too; one verified elsewhere may not."""
    tenant = require_tenant()
    domain = check_domain(text)
    lock_name(domain)  # no claim slips in while another tenant's verification commits
    claims = db.session.execute(select(TenantDomain).where(TenantDomain.domain == domain)).scalars().all()
    if any(claim.tenant_id == tenant.id for claim in claims):
        raise Refused(f"You have already added {domain}.", "domain")
    if any(claim.verified_at is not None for claim in claims):
        raise _in_use(domain)
    count = db.session.execute(
        select(func.count()).select_from(TenantDomain).where(TenantDomain.tenant_id == tenant.id)
    ).scalar_one()
    # Two adds at once may pass this count together: one domain over is harmless.
    if count >= MAX_DOMAINS:
        raise Refused(f"A tenant may have at most {MAX_DOMAINS} custom domains; remove one first.", "domain")
    row = TenantDomain(tenant_id=tenant.id, domain=domain, verification_token=secrets.token_hex(16))
    db.session.add(row)
    audit_events.record("tenant.domain_added", actor=actor, tenant_id=tenant.id, target=domain)
    try:
        db.session.commit()
    except IntegrityError:  # the same tenant's second add of the name, at the same moment
        db.session.rollback()
        raise Refused(f"You have already added {domain}.", "domain") from None
    return row


def verify(domain_id, actor):
    """Look for the domain's TXT record now; record the outcome. Returns the row
    (verified_at set, or last_check_error saying why not). NotFound: not ours.
    Refused ("already in use"): another tenant verified the name first; this claim is
    dropped then (deleted, with its audit event)."""
    tenant = require_tenant()
    row = _own(domain_id)
    if row.verified_at is not None:
        return row
    claim_id, domain, token = row.id, row.domain, row.verification_token
    # Hold no registry transaction (nor its pooled connection) while DNS answers.
    db.session.commit()
    error = dns.check(domain, token, current_app.config["DNS_NAMESERVERS"])
    now = datetime.now(timezone.utc)
    if error is not None:
        row = _own_claim(domain_id, domain)
        row.last_checked_at, row.last_check_error = now, error
        audit_events.record("tenant.domain_check_failed", actor=actor, tenant_id=tenant.id, target=domain,
                            details={"error": error})
        db.session.commit()
        return row
    lock_name(domain)  # one verification of a name at a time: the second sees the first's outcome
    row = _own_claim(domain_id, domain)
    if row.verified_at is not None:  # staff recorded it for us meanwhile
        db.session.commit()
        return row
    if _verified_elsewhere(domain, tenant.id):
        _drop_own_claim(claim_id)
        raise _in_use_dropped(domain)
    try:
        drop_other_claims(domain, tenant.id)
        row.last_checked_at, row.last_check_error, row.verified_at = now, None, now
        audit_events.record("tenant.domain_verified", actor=actor, tenant_id=tenant.id, target=domain)
        db.session.commit()
    except IntegrityError:
        # The partial unique index: another tenant's verification of the name committed
        # first, past the lock (which every path here takes; the index is the last word).
        db.session.rollback()
        _drop_own_claim(claim_id)
        raise _in_use_dropped(domain) from None
    forget_domains(domain)  # it routes from now on, not once a cached "unknown" expires
    return row


def _in_use_dropped(domain):
    return Refused(f"{domain} is already in use. Another tenant verified it first: your claim of it "
                   "was removed.", "domain")


def lock_name(domain):
    """Serialise, until the transaction ends, the changes to the claims of `domain`
    (a transaction-scoped advisory lock: nothing to release, safe behind PgBouncer)."""
    db.session.execute(sql_text("select pg_advisory_xact_lock(:key, hashtext(:domain))"),
                       {"key": CLAIM_LOCK_KEY, "domain": domain})


def _verified_elsewhere(domain, tenant_id):
    return db.session.execute(select(TenantDomain.id).where(
        TenantDomain.domain == domain, TenantDomain.tenant_id != tenant_id,
        TenantDomain.verified_at.is_not(None))).first() is not None


def drop_other_claims(domain, tenant_id):
    """Delete the other tenants' pending claims of `domain`, which `tenant_id` has just
    verified, each with an audit event in its own tenant's log that does not say who
    verified it. In the caller's transaction (which holds `lock_name(domain)`)."""
    return _drop(TenantDomain.domain == domain, TenantDomain.tenant_id != tenant_id)


def _drop_own_claim(claim_id):
    """Drop the current tenant's stale claim of a name verified elsewhere; commit."""
    _drop(TenantDomain.id == claim_id, TenantDomain.tenant_id == require_tenant().id)
    db.session.commit()


def _drop(*where):
    """Delete the pending claims matching `where`, with a "domain.claim_dropped" event in
    each one's tenant's log; returns how many."""
    dropped = db.session.execute(
        delete(TenantDomain).where(*where, TenantDomain.verified_at.is_(None))
        .returning(TenantDomain.tenant_id, TenantDomain.domain)
    ).all()
    for tenant_id, domain in dropped:
        event = audit_events.record("domain.claim_dropped", actor=SYSTEM, tenant_id=tenant_id, target=domain,
                                    reason=DROPPED_REASON, details={"cause": "verified by another tenant"})
        event.ip = None  # the request may be the other tenant's: not this tenant's business
    return len(dropped)


def remove(domain_id, actor):
    """Remove one of the current tenant's domains; it stops routing at once. Returns its name."""
    tenant = require_tenant()
    row = _own(domain_id)
    domain = row.domain
    db.session.delete(row)
    audit_events.record("tenant.domain_removed", actor=actor, tenant_id=tenant.id, target=domain)
    db.session.commit()
    forget_domains(domain)
    return domain


def _own_claim(domain_id, domain):
    """`_own(domain_id)` again, after a moment without a transaction: a claim dropped
    meanwhile because another tenant verified `domain` is Refused ("already in use");
    one removed by the tenant is NotFound."""
    try:
        return _own(domain_id)
    except NotFound:
        if _verified_elsewhere(domain, require_tenant().id):
            raise _in_use_dropped(domain) from None
        raise


def _own(domain_id):
    """The current tenant's domain `domain_id` (NotFound for another tenant's id, a
    malformed one or a missing one alike)."""
    return registry_row(TenantDomain, domain_id, require_tenant().id)


def record_for_tenant(tenant, domain, actor=None):
    """Staff record a custom domain for `tenant`, verified at once: staff's word stands for the
    DNS record a tenant admin would show (the same rules of a valid domain apply).
    A domain the tenant itself claimed and has not verified yet is verified by it. Other
    tenants' pending claims of the name are dropped, as when a claim verifies by DNS; a
    name verified for another tenant is refused."""
    domain = check_domain(domain)
    lock_name(domain)
    claims = db.session.execute(select(TenantDomain).where(TenantDomain.domain == domain)).scalars().all()
    own = next((claim for claim in claims if claim.tenant_id == tenant.id), None)
    if own is not None and own.verified_at is not None:
        raise Refused(f"{domain} is already recorded for this tenant.", "domain")
    holder = next((claim for claim in claims if claim.tenant_id != tenant.id and claim.verified_at is not None),
                  None)
    if holder is not None:  # staff may know whose it is
        raise Refused(f"{domain} is already in use: verified for tenant {holder.tenant.slug}.", "domain")
    try:
        drop_other_claims(domain, tenant.id)
        if own is None:
            own = TenantDomain(tenant_id=tenant.id, domain=domain)
            db.session.add(own)
        own.verified_at = datetime.now(timezone.utc)
        audit_events.record("tenant.domain_added", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                            details={"domain": domain})
        db.session.commit()
    except IntegrityError:  # verified for another tenant past the lock: the index says no
        db.session.rollback()
        raise Refused(f"{domain} is already in use.", "domain") from None
    db.session.refresh(tenant)
    forget_tenant(tenant)  # its domains, this one among them: it routes at once
    return tenant
