"""Registry queries and changes that are not lifecycle steps."""
from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from portal.dbsetup import tenant_head
from portal.extensions import db
from portal.models import WITH_STORAGE, Tenant
from portal.services import audit_events
from portal.services.metering import storage_bytes, user_count
from portal.services.pagination import paginate
from portal.services.rows import registry_row
from portal.services.validation import check_name
from portal.tenancy.context import TenantRef
from portal.tenancy.data import Order
from portal.tenancy.lookup import forget_tenant
from portal.tenancy.names import database_name, role_name, schema_name
from portal.tenancy.placement import tenant_session

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


