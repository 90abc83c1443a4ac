"""Creating a tenant: its storage in its tier, its registry row, its first admin and
default settings. A failure at any step leaves nothing behind.

- pool: the registry row and the tenant's rows are written in one transaction (same
  database, the tenant session joins the registry session's connection);
- bridge and silo: the storage (role, schema or database, tables) is made first, as the
  placement's owner; if anything after it fails, the storage is dropped again.
"""
import logging
import uuid

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from portal.auth.services import open_set_password_link
from portal.extensions import db
from portal.lifecycle.cache import forget_tenant
from portal.lifecycle.placements import choose_for_silo
from portal.lifecycle.storage import create_storage, drop_storage
from portal.models import TENANT_TIERS, Plan, Tenant
from portal.services import audit
from portal.services.errors import Refused
from portal.services.validation import check_name, normalise_email
from portal.tenancy.context import TenantRef
from portal.tenancy.data import TenantSetting, TenantUser
from portal.tenancy.placement import tenant_transaction
from portal.tenancy.slugs import slug_problem

log = logging.getLogger(__name__)
DEFAULT_SETTINGS = {"display_colour": "#3b5bdb", "support_access": True, "session_minutes": 480}


def active_plan(plan_code):
    plan = db.session.get(Plan, plan_code or "")
    if plan is None or plan.is_retired:
        raise Refused("Choose one of the plans offered.", "plan")
    return plan


def _check_slug_free(slug):
    problem = slug_problem(slug)
    if problem:
        raise Refused(problem, "slug")
    if db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).first():
        raise Refused(f"The slug “{slug}” is taken.", "slug")


def pool_revision():
    return db.session.execute(text("select version_num from tenant_data.alembic_version")).scalar()


def create_tenant(slug, name, plan_code, admin_email, actor=None, tier=None, placement_id=None,
                  script_location=None):
    """Create a tenant; return (tenant, set-password token of its first admin).

    `tier` defaults to the plan's; a silo tenant goes to `placement_id`, or to the
    emptiest placement with room."""
    _check_slug_free(slug)
    name = check_name(name)
    plan = active_plan(plan_code)
    admin_email = normalise_email(admin_email, "admin_email")
    tier = tier or plan.default_tier
    if tier not in TENANT_TIERS:
        raise Refused("Choose pool, bridge or silo.", "tier")
    placement = choose_for_silo(placement_id) if tier == "silo" else None
    if placement_id and tier != "silo":
        raise Refused("Only silo tenants are placed on a server of their own.", "placement")

    tenant = Tenant(id=uuid.uuid4(), slug=slug, name=name, plan_code=plan.code, tier=tier, status="active",
                    settings={}, placement_id=placement.id if placement else None)
    url_env = placement.url_env if placement else None
    try:
        revision = create_storage(tenant.id, tier, url_env, script_location)
    except Exception as exc:  # the storage step undid itself; say why on the page
        log.warning("storage of tenant %s (%s) failed: %s", slug, tier, exc)
        message = str(getattr(exc, "orig", exc)).strip()
        reason = message.splitlines()[0] if message else type(exc).__name__
        raise Refused(f"The tenant's storage could not be made: {reason}", "placement" if placement else "tier") from None

    tenant.schema_version = revision if tier != "pool" else pool_revision()
    db.session.add(tenant)
    try:
        db.session.flush()
        ref = TenantRef.of(tenant)
        # Pool: same database as the registry, so one transaction holds both.
        bind = db.session.connection() if tier == "pool" else None
        with tenant_transaction(ref, bind=bind) as session:
            admin = TenantUser(tenant_id=tenant.id, email=admin_email, name="", role="admin")
            token = open_set_password_link(admin)
            session.add(admin)
            session.add_all(
                TenantSetting(tenant_id=tenant.id, key=key, value={"value": value})
                for key, value in DEFAULT_SETTINGS.items()
            )
        audit.record(
            "tenant.created", actor=actor, tenant_id=tenant.id, target=slug,
            details={"name": name, "plan": plan.code, "tier": tier, "admin_email": admin_email,
                     "placement": placement.name if placement else None},
        )
        db.session.commit()
    except BaseException as exc:
        db.session.rollback()
        drop_storage(tenant.id, tier, url_env)
        if isinstance(exc, IntegrityError):
            raise Refused(f"The slug “{slug}” is taken.", "slug") from None
        raise
    forget_tenant(tenant)
    return tenant, token
