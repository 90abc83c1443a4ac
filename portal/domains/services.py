"""A tenant's custom domains: what a valid one is, and adding, verifying, removing them.

A domain a tenant admin adds is pending until a DNS TXT record carrying its token is
seen (`portal/domains/dns.py`); only verified domains route (`portal/tenancy/lookup.py`).
Domains live in the registry (one name, one tenant: a unique column), so these are
registry transactions, each with its audit event.
"""
import ipaddress
import re
import secrets
import uuid
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.domains import dns
from portal.extensions import db
from portal.lifecycle.cache import forget_domains
from portal.models import TenantDomain
from portal.services import audit
from portal.services.errors import Refused
from portal.tenancy.context import require_tenant

MAX_DOMAINS = 10  # per tenant, staff-recorded ones included
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


def add(text, actor):
    """Claim a domain for the current tenant: pending, with a fresh token."""
    tenant = require_tenant()
    domain = check_domain(text)
    owner = db.session.execute(select(TenantDomain.tenant_id).where(TenantDomain.domain == domain)).scalar()
    if owner == tenant.id:
        raise Refused(f"You have already added {domain}.", "domain")
    if owner is not None:
        raise Refused(f"{domain} is already in use.", "domain")  # never say by whom
    count = db.session.execute(
        select(func.count()).select_from(TenantDomain).where(TenantDomain.tenant_id == tenant.id)
    ).scalar_one()
    # Two adds at once may pass this count together: one domain over is harmless.
    if count >= MAX_DOMAINS:
        raise Refused(f"A tenant may have at most {MAX_DOMAINS} custom domains; remove one first.", "domain")
    row = TenantDomain(tenant_id=tenant.id, domain=domain, verification_token=secrets.token_hex(16))
    db.session.add(row)
    audit.record("tenant.domain_added", actor=actor, tenant_id=tenant.id, target=domain)
    try:
        db.session.commit()
    except IntegrityError:  # claimed by someone else between our check and our insert
        db.session.rollback()
        raise Refused(f"{domain} is already in use.", "domain") from None
    return row


def verify(domain_id, actor):
    """Look for the domain's TXT record now; record the outcome. Returns the row
    (verified_at set, or last_check_error saying why not). LookupError: not ours."""
    tenant = require_tenant()
    row = _own(domain_id)
    if row.verified_at is not None:
        return row
    domain, token = row.domain, row.verification_token
    # Hold no registry transaction (nor its pooled connection) while DNS answers.
    db.session.commit()
    error = dns.check(domain, token, current_app.config["DNS_NAMESERVERS"])
    row = _own(domain_id)  # removed meanwhile: LookupError, as for a stranger's id
    now = datetime.now(timezone.utc)
    row.last_checked_at, row.last_check_error = now, error
    if error is None:
        row.verified_at = now
        audit.record("tenant.domain_verified", actor=actor, tenant_id=tenant.id, target=domain)
    else:
        audit.record("tenant.domain_check_failed", actor=actor, tenant_id=tenant.id, target=domain,
                     details={"error": error})
    db.session.commit()
    if error is None:
        forget_domains(domain)  # it routes from now on, not once a cached "unknown" expires
    return row


def remove(domain_id, actor):
    """Remove one of the current tenant's domains; it stops routing at once. Returns its name."""
    tenant = require_tenant()
    row = _own(domain_id)
    domain = row.domain
    db.session.delete(row)
    audit.record("tenant.domain_removed", actor=actor, tenant_id=tenant.id, target=domain)
    db.session.commit()
    forget_domains(domain)
    return domain


def _own(domain_id):
    """The current tenant's domain `domain_id`; LookupError for another tenant's id, a
    malformed one or a missing one alike (the route answers 404 for all)."""
    try:
        key = uuid.UUID(str(domain_id))
    except ValueError:
        raise LookupError(domain_id) from None
    row = db.session.execute(
        select(TenantDomain).where(TenantDomain.id == key, TenantDomain.tenant_id == require_tenant().id)
    ).scalar_one_or_none()
    if row is None:
        raise LookupError(domain_id)
    return row
