"""Creating a tenant: its registry row, its first admin and its default settings.

In the pool tier the registry row and the tenant's rows are written in one
transaction (same database), so a failure leaves nothing behind.
"""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.auth.services import open_set_password_link
from portal.extensions import db
from portal.lifecycle.cache import forget_tenant
from portal.services.errors import Refused
from portal.models import Plan, Tenant
from portal.services import audit
from portal.services.validation import check_name, normalise_email
from portal.tenancy.context import TenantRef
from portal.tenancy.data import TenantSetting, TenantUser
from portal.tenancy.placement import tenant_transaction
from portal.tenancy.slugs import slug_problem

DEFAULT_SETTINGS = {"display_colour": "#3b5bdb", "support_access": True, "session_minutes": 480}


def active_plan(plan_code):
    plan = db.session.get(Plan, plan_code or "")
    if plan is None or plan.is_retired:
        raise Refused("Choose one of the plans offered.", "plan")
    return plan


def create_tenant(slug, name, plan_code, admin_email, actor=None):
    """Create a tenant; return (tenant, set-password token of its first admin)."""
    problem = slug_problem(slug)
    if problem:
        raise Refused(problem, "slug")
    name = check_name(name)
    plan = active_plan(plan_code)
    admin_email = normalise_email(admin_email, "admin_email")
    if db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).first():
        raise Refused(f"The slug “{slug}” is taken.", "slug")

    tenant = Tenant(slug=slug, name=name, plan_code=plan.code, tier="pool", status="active", settings={})
    db.session.add(tenant)
    try:
        db.session.flush()
        with tenant_transaction(TenantRef.of(tenant), bind=db.session.connection()) as session:
            admin = TenantUser(tenant_id=tenant.id, email=admin_email, name="", role="admin")
            token = open_set_password_link(admin)
            session.add(admin)
            session.add_all(
                TenantSetting(tenant_id=tenant.id, key=key, value={"value": value})
                for key, value in DEFAULT_SETTINGS.items()
            )
        audit.record(
            "tenant.created", actor=actor, tenant_id=tenant.id, target=slug,
            details={"name": name, "plan": plan.code, "tier": "pool", "admin_email": admin_email},
        )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Refused(f"The slug “{slug}” is taken.", "slug") from None
    except Exception:
        db.session.rollback()
        raise
    forget_tenant(tenant)
    return tenant, token
