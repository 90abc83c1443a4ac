"""Registry queries and changes that are not lifecycle steps."""
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from portal.dbsetup import tenant_head
from portal.extensions import db
from portal.models import WITH_STORAGE, Job, OutboxMessage, Tenant
from portal.services import audit_events, password_links
from portal.services.errors import Refused
from portal.services.metering import storage_bytes, user_count
from portal.services.pagination import paginate
from portal.services.rows import registry_row
from portal.services.validation import check_name
from portal.tenancy.context import TenantRef
from portal.tenancy.data import Order, TenantUser
from portal.tenancy.lookup import forget_tenant
from portal.tenancy.names import database_name, role_name, schema_name
from portal.tenancy.placement import tenant_session, tenant_transaction

SORTS = {
    "slug": Tenant.slug,
    "name": func.lower(Tenant.name),
    "created": Tenant.created_at,
    "plan": Tenant.plan_code,
    "status": Tenant.status,
}


def search_tenants(q="", status="", plan="", tier="", sort="slug", direction="asc", page=1, per_page=50):
    """One page of the registry. Filters are exact; `q` matches slug or name."""
    query = select(Tenant)
    if q:
        pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Tenant.slug.like(pattern), func.lower(Tenant.name).like(pattern)))
    if status:
        query = query.where(Tenant.status == status)
    if plan:
        query = query.where(Tenant.plan_code == plan)
    if tier:
        query = query.where(Tenant.tier == tier)
    column = SORTS.get(sort, Tenant.slug)
    order = column.desc() if direction == "desc" else column.asc()
    return paginate(query, (order, Tenant.slug), page, per_page)


def get_tenant(tenant_id):
    """The registry row of tenant `tenant_id` (an id from a URL, say); NotFound otherwise."""
    return registry_row(Tenant, tenant_id)


def get_tenant_by_slug(slug):
    return db.session.execute(select(Tenant).where(Tenant.slug == slug)).scalar_one_or_none()


def tenant_summary(tenant):
    """Counts of the tenant's own rows, read under its own context (RLS applies); None
    while it has no storage (being made, failed, closed)."""
    if tenant.status not in WITH_STORAGE:
        return None
    with tenant_session(TenantRef.of(tenant)) as session:
        users = user_count(tenant, session)
        orders = session.execute(select(func.count()).select_from(Order)).scalar_one()
    return {"users": users, "orders": orders}


def storage_facts(tenant):
    """Where the tenant's rows live, how much room they take, their schema version."""
    ref = TenantRef.of(tenant)
    facts = {"tier": tenant.tier, "version": tenant.schema_version or "unknown", "head": tenant_head()}
    if tenant.tier == "pool":
        facts["where"] = "schema tenant_data (shared, row-level security)"
    elif tenant.tier == "bridge":
        facts["where"] = f"schema {schema_name(tenant.id)}, role {role_name(tenant.id)}"
    else:
        facts["where"] = f"database {database_name(tenant.id)} on {tenant.placement.name}, role {role_name(tenant.id)}"
    try:
        # The measurement the quotas use, cached (STORAGE_CACHE_SECONDS): a page view
        # does not scan the tenant's rows or open an owner connection each time.
        size = storage_bytes(ref) if tenant.status in WITH_STORAGE else None
    except SQLAlchemyError:
        size = None
    if size is None:
        facts["size"] = "—"
    else:
        estimate = " (pool: its rows' size, an estimate)" if tenant.tier == "pool" else ""
        facts["size"] = f"{size / 1_048_576:.2f} MB{estimate}"
    return facts


def rename(tenant, name, actor=None):
    name = check_name(name)
    old = tenant.name
    if name == old:
        return tenant
    tenant.name = name
    audit_events.record("tenant.renamed", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                        details={"from": old, "to": name})
    db.session.commit()
    forget_tenant(tenant)
    return tenant




@dataclass(frozen=True)
class FirstAdmin:
    """A tenant's first admin as its staff page shows them: their invitation's state."""

    email: str
    has_password: bool
    message: Optional[OutboxMessage]  # the latest mail to them (the invitation, or a new link)


def first_admin(tenant):
    """The first admin named when `tenant` was made, or None (an import has none, and a
    tenant without storage shows none)."""
    job = db.session.execute(select(Job).where(Job.tenant_id == tenant.id, Job.kind == "provision")
                             .order_by(Job.created_at).limit(1)).scalar_one_or_none()
    email = (job.params or {}).get("admin_email") if job is not None else None
    if email is None or tenant.status not in WITH_STORAGE:
        return None
    with tenant_session(TenantRef.of(tenant)) as session:
        user = session.execute(select(TenantUser).where(TenantUser.email == email)).scalar_one_or_none()
    if user is None:
        return None
    message = db.session.execute(
        select(OutboxMessage).where(OutboxMessage.tenant_id == tenant.id, OutboxMessage.to_address == email)
        .order_by(OutboxMessage.created_at.desc()).limit(1)).scalar_one_or_none()
    return FirstAdmin(email, user.password_hash is not None, message)


def invite_first_admin(tenant, actor):
    """Send the first admin a new set-password link (their earlier one stops working).
    Refused once they have a password: from then on they are the tenant's to manage."""
    found = first_admin(tenant)
    if found is None:
        raise Refused("This tenant has no first admin to invite.")
    if found.has_password:
        raise Refused(f"{found.email} has already set a password.")
    with tenant_transaction(TenantRef.of(tenant)) as session:
        user = session.execute(select(TenantUser).where(TenantUser.email == found.email)).scalar_one()
        token = password_links.open_link(user)
    message = password_links.mail_link(tenant, user, token, "invitation", "The platform's staff")
    audit_events.record("tenant.first_admin_invited", actor=actor, tenant_id=tenant.id, target=found.email,
                        details={"mail": message.transport, "error": message.error})
    db.session.commit()
    return message
