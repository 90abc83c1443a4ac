"""Creating a tenant, as a job of steps (see saga.py): the registry record, storage for
its tier, its database role, limits, default settings, its first admin with an
invitation, the cache warm-up. A failing step undoes the steps before it, newest first,
and leaves the tenant `failed` with the step and the reason; staff retry or discard it.

`request_tenant` validates and records the tenant (`provisioning`) and its job; a worker
runs `provision`. `create_tenant` does both at once, for the CLI and tests.
"""
import logging
import time
import uuid

from flask import current_app
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.lifecycle.exports import delete_rows, discard_upload, load_rows, verify_export
from portal.lifecycle.placements import choose_for_silo
from portal.lifecycle.saga import Step, StepFailed, run_steps, undo_steps
from portal.lifecycle.storage import drop_role, drop_storage_only, make_role, make_storage, set_role_limits
from portal.metrics import PROVISIONING
from portal.models import TENANT_TIERS, Tenant
from portal.services import audit_events, entitlements, jobqueue, password_links, tenant_settings
from portal.services.errors import Refused
from portal.services.validation import check_name, normalise_email
from portal.tenancy.context import TenantRef
from portal.tenancy.data import TenantSetting, TenantUser
from portal.tenancy.lookup import forget_tenant
from portal.tenancy.placement import tenant_transaction
from portal.tenancy.slugs import slug_problem

log = logging.getLogger(__name__)


def pool_revision():
    return db.session.execute(text("select version_num from tenant_data.alembic_version")).scalar()


# -- the request --------------------------------------------------------------------------
def request_tenant(slug, name, plan_code, admin_email, actor=None, tier=None, placement_id=None,
                   script_location=None):
    """Validate, record the tenant as `provisioning` and its job (committed, not yet
    enqueued); return (tenant, job). Bad input is Refused and records nothing."""
    _check_slug(slug)
    admin_email = normalise_email(admin_email, "admin_email")
    return _record(slug, name, plan_code, tier, placement_id, actor, "provision",
                   {"admin_email": admin_email, "script_location": script_location})


def request_import(archive_path, slug, name, plan_code, actor=None, tier=None, placement_id=None):
    """Check the export, then record a tenant to be made from it (like request_tenant)."""
    _check_slug(slug)
    manifest = verify_export(archive_path)
    return _record(slug, name or manifest["tenant"]["name"], plan_code or manifest["tenant"]["plan"], tier,
                   placement_id, actor, "import",
                   {"archive": archive_path, "from": manifest["tenant"], "tables": manifest["tables"]})


def _check_slug(slug):
    problem = slug_problem(slug)
    if problem:
        raise Refused(problem, "slug")
    if db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).first():
        raise Refused(f"The slug “{slug}” is taken.", "slug")


def _record(slug, name, plan_code, tier, placement_id, actor, kind, params):
    name = check_name(name)
    plan = entitlements.offered_plan(plan_code)
    tier = tier or plan.default_tier
    if tier not in TENANT_TIERS:
        raise Refused("Choose pool, bridge or silo.", "tier")
    if placement_id and tier != "silo":
        raise Refused("Only silo tenants are placed on a server of their own.", "placement")
    placement = choose_for_silo(placement_id) if tier == "silo" else None

    tenant = Tenant(id=uuid.uuid4(), slug=slug, name=name, plan_code=plan.code, tier=tier, status="provisioning",
                    placement_id=placement.id if placement else None)
    db.session.add(tenant)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Refused(f"The slug “{slug}” is taken.", "slug") from None
    job = jobqueue.create(kind, tenant.id, [s.name for s in _steps(kind)], audit_events.actor_label(actor),
                          params=params)
    audit_events.record("tenant.provisioning", actor=actor, tenant_id=tenant.id, target=slug,
                        details={"name": name, "plan": plan.code, "tier": tier, "kind": kind,
                                 "placement": placement.name if placement else None, "job": str(job.id)})
    db.session.commit()
    return tenant, job


def create_tenant(slug, name, plan_code, admin_email, actor=None, tier=None, placement_id=None,
                  script_location=None):
    """Request and provision at once (CLI, demo, tests); return (tenant, the first admin's
    set-password token: handed over in memory here, never kept). A failed provisioning
    is Refused with its step and reason."""
    tenant, job = request_tenant(slug, name, plan_code, admin_email, actor, tier, placement_id, script_location)
    handed = {}
    jobqueue.run(job, lambda job, progress: provision(job, progress, handed))  # what a worker does with the job
    db.session.refresh(tenant)
    db.session.refresh(job)
    if tenant.status != "active":
        raise Refused(f"Provisioning failed at step “{tenant.failed_step}”: {tenant.status_reason}",
                      "placement" if tenant.tier == "silo" else "tier")
    return tenant, handed.get("token")


# -- the job ------------------------------------------------------------------------------
class _Context:
    def __init__(self, tenant, job, handed=None):
        self.tenant, self.job, self.handed = tenant, job, handed
        self.url_env = (tenant.placement.url_env or "") if tenant.placement is not None else None
        self.params = job.params if job is not None else {}

    @property
    def ref(self):
        return TenantRef.of(self.tenant)


def _registry_record(ctx):
    ctx.tenant.status, ctx.tenant.failed_step, ctx.tenant.status_reason = "provisioning", None, None
    db.session.commit()


def _storage(ctx):
    revision = make_storage(ctx.tenant.id, ctx.tenant.tier, ctx.url_env, ctx.params.get("script_location"))
    ctx.tenant.schema_version = revision if ctx.tenant.tier != "pool" else pool_revision()
    db.session.commit()


def _undo_storage(ctx):
    drop_storage_only(ctx.tenant.id, ctx.tenant.tier, ctx.url_env)


def _role(ctx):
    make_role(ctx.tenant.id, ctx.tenant.tier, ctx.url_env)


def _undo_role(ctx):
    drop_role(ctx.tenant.id, ctx.tenant.tier, ctx.url_env)


def _limits(ctx):
    """The tenant role's caps (bridge, silo); undone with the role itself."""
    cfg = current_app.config
    set_role_limits(ctx.tenant.id, ctx.tenant.tier, ctx.url_env, cfg["TENANT_ROLE_CONNECTIONS"],
                    cfg["TENANT_ROLE_STATEMENT_TIMEOUT_MS"])


def _pool_rows_undo(model):
    """Undo of a data step: in the pool, delete the tenant's rows (RLS keeps it to them);
    in a bridge or silo tenant, the storage's undo drops them with everything else."""

    def undo(ctx):
        if ctx.tenant.tier == "pool":
            with tenant_transaction(ctx.ref) as session:
                session.execute(delete(model))

    return undo


def _default_settings(ctx):
    with tenant_transaction(ctx.ref) as session:
        present = set(session.execute(select(TenantSetting.key)).scalars())
        session.add_all(TenantSetting(tenant_id=ctx.tenant.id, key=key, value={"value": value})
                        for key, value in tenant_settings.DEFAULTS.items() if key not in present)


def _first_admin(ctx):
    """The first admin, invited by mail like any user (with no mail server, the message
    waits in the staff outbox). A mail server's refusal does not fail the tenant: the
    tenant page says so, and staff send a new link."""
    email = ctx.params["admin_email"]
    with tenant_transaction(ctx.ref) as session:
        admin = session.execute(select(TenantUser).where(TenantUser.email == email)).scalar_one_or_none()
        if admin is None:
            admin = TenantUser(tenant_id=ctx.tenant.id, email=email, name="", role="admin")
            session.add(admin)
        token = password_links.open_link(admin)
    message = password_links.mail_link(ctx.tenant, admin, token, "invitation", "The platform's staff")
    db.session.flush()
    ctx.job.result = {**(ctx.job.result or {}), "invitation": str(message.id)}
    db.session.commit()
    if ctx.handed is not None:
        ctx.handed["token"] = token


def _cache_warm_up(ctx):
    ctx.tenant.status = "active"
    db.session.commit()
    forget_tenant(ctx.tenant)
    current_app.extensions["portal.tenant_lookup"].by_slug(ctx.tenant.slug)


def _undo_cache(ctx):
    ctx.tenant.status = "provisioning"
    db.session.commit()
    forget_tenant(ctx.tenant)


def _load_data(ctx):
    if "tables" not in ctx.params:  # (an import asked for before the manifest was kept with it)
        verify_export(ctx.params["archive"])
    load_rows(ctx.tenant, ctx.params["archive"], checked_tables=ctx.params.get("tables"))


def _undo_load(ctx):
    if ctx.tenant.tier == "pool":
        delete_rows(ctx.tenant)


def _steps(kind="provision"):
    """The steps of provisioning; an import loads the export's rows instead of making
    default settings and a first admin."""
    if kind == "import":
        data = [Step("load data", _load_data, _undo_load)]
    else:
        data = [
            Step("default settings", _default_settings, _pool_rows_undo(TenantSetting)),
            Step("first admin and invitation", _first_admin, _pool_rows_undo(TenantUser)),
        ]
    return [
        Step("registry record", _registry_record),
        Step("storage", _storage, _undo_storage),
        Step("database role", _role, _undo_role),
        Step("limits", _limits),
        *data,
        Step("cache warm-up", _cache_warm_up, _undo_cache),
    ]


def provision(job, progress, handed=None):
    """The worker's half: run the steps; on failure leave the tenant `failed`. `handed`
    (create_tenant's): a dict that receives the first admin's token."""
    tenant = db.session.get(Tenant, job.tenant_id)
    if tenant is None or tenant.status not in ("provisioning", "failed"):
        progress.finish("failed", error=f"the tenant is {tenant.status if tenant else 'gone'}, not provisioning")
        return
    ctx = _Context(tenant, job, handed)
    started = time.perf_counter()
    try:
        run_steps(_steps(job.kind), ctx, progress)
    except StepFailed as failure:
        PROVISIONING.labels(job.kind, "failed").observe(time.perf_counter() - started)
        db.session.rollback()
        tenant = db.session.get(Tenant, job.tenant_id)
        tenant.status, tenant.failed_step, tenant.status_reason = "failed", failure.step, failure.reason
        audit_events.record("tenant.failed", actor=("system", None, job.created_by), tenant_id=tenant.id,
                            target=tenant.slug, reason=failure.reason,
                            details={"step": failure.step, "undo_errors": failure.undo_errors, "job": str(job.id)})
        db.session.commit()
        forget_tenant(tenant)
        progress.finish("failed", error=f"{failure.step}: {failure.reason}")
        return
    PROVISIONING.labels(job.kind, "succeeded").observe(time.perf_counter() - started)
    audit_events.record("tenant.created", actor=("system", None, job.created_by), tenant_id=tenant.id,
                        target=tenant.slug, details={"tier": tenant.tier, "job": str(job.id)})
    db.session.commit()
    if job.kind == "import":
        discard_upload(job.params["archive"])  # an uploaded export holds the tenant's data
    progress.finish("succeeded")


def discard(tenant, actor=None):
    """Remove a failed tenant: undo every step (each is idempotent), then its row."""
    if tenant.status != "failed":
        raise Refused(f"Only a failed tenant can be discarded; this one is {tenant.status}.")
    ctx = _Context(tenant, jobqueue.latest_for_tenant(tenant.id))
    job = ctx.job
    errors = undo_steps(list(reversed(_steps(job.kind if job else "provision"))), ctx)
    if errors:
        # An undo (the cache's) may have moved it back to provisioning: it is still failed.
        tenant.status = "failed"
        db.session.commit()
        raise Refused("Discarding stopped: " + "; ".join(errors))
    if job is not None and job.kind == "import":
        discard_upload(job.params.get("archive", ""))
    audit_events.record("tenant.discarded", actor=actor, tenant_id=tenant.id, target=tenant.slug)
    domains = [d.domain for d in tenant.domains]
    db.session.delete(tenant)
    db.session.commit()
    forget_tenant(tenant, domains)
