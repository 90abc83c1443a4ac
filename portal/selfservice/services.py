from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Plan
from portal.tenancy.context import require_tenant
from portal.tenancy.data import Order, TenantUser
from portal.tenancy.placement import get_row, tenant_session

# Average on-disk bytes per row of the pool tables, used to estimate a pool tenant's
# storage (its rows share tables with other tenants, so relation sizes do not apply).
_BYTES_PER_ROW = {"users": 400, "orders": 160}


def usage_summary():
    """The current tenant's plan and what it uses of it."""
    tenant = require_tenant()
    plan = db.session.get(Plan, tenant.plan_code)
    with tenant_session() as session:
        users = session.execute(select(func.count()).select_from(TenantUser)).scalar_one()
        orders, revenue = session.execute(
            select(func.count(), func.coalesce(func.sum(Order.amount_cents), 0)).select_from(Order)
        ).one()
    storage_bytes = users * _BYTES_PER_ROW["users"] + orders * _BYTES_PER_ROW["orders"]
    return {
        "plan": plan,
        "users": users,
        "orders": orders,
        "revenue_cents": revenue,
        "storage_mb": round(storage_bytes / 1_048_576, 2),
    }


def latest_orders(limit=50):
    with tenant_session() as session:
        return session.execute(select(Order).order_by(Order.created_at.desc()).limit(limit)).scalars().all()


def get_order(order_id):
    with tenant_session() as session:
        return get_row(session, Order, order_id)
