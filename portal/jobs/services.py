"""The staff Jobs page: jobs filtered by kind, state and tenant, each with its tenant's slug
and what it produced (a tenant, an export, a move, a drained placement, ...)."""
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import and_, or_, select

from portal.extensions import db
from portal.lifecycle import dispatch
from portal.models import Job, Placement, Tenant
from portal.models.job import JOB_STATES
from portal.services.pagination import paginate


@dataclass(frozen=True)
class JobFilters:
    kind: str = ""
    state: str = ""
    tenant: str = ""

    def args(self):
        """The filters as URL arguments (empty ones left out)."""
        return {name: value for name, value in vars(self).items() if value}


def kinds():
    return sorted(dispatch.HANDLERS)


def read_filters(args):
    """(JobFilters, {field: message}) from the URL: a value the page does not offer is
    not applied, and said beside its field."""
    errors = {}
    kind = args.get("kind", "").strip()[:64]
    if kind and kind not in dispatch.HANDLERS:
        errors["kind"], kind = f"Not a kind of job: choose one of the list ({kind[:32]!r} is not).", ""
    state = args.get("state", "").strip()[:32]
    if state and state not in JOB_STATES:
        errors["state"], state = f"Not a state: one of {', '.join(JOB_STATES)}.", ""
    tenant = args.get("tenant", "").strip().lower()[:63]
    if tenant and not tenant.isprintable():
        errors["tenant"], tenant = "A tenant's slug: letters, digits and hyphens.", ""
    return JobFilters(kind, state, tenant), errors


def _stale_before():
    return datetime.now(timezone.utc) - timedelta(seconds=current_app.config["JOB_STALE_SECONDS"])


def search_jobs(filters, page=1, per_page=50):
    """One page of (job, tenant slug or None), newest first. The state is the one the
    page shows: a running job whose worker stopped beating counts as interrupted."""
    query = select(Job, Tenant.slug).outerjoin(Tenant, Tenant.id == Job.tenant_id)
    if filters.kind:
        query = query.where(Job.kind == filters.kind)
    if filters.state:
        stale = and_(Job.state == "running", Job.heartbeat_at.is_not(None), Job.heartbeat_at < _stale_before())
        if filters.state == "interrupted":
            query = query.where(or_(Job.state == "interrupted", stale))
        elif filters.state == "running":
            query = query.where(Job.state == "running", ~stale)
        else:
            query = query.where(Job.state == filters.state)
    if filters.tenant:
        query = query.where(Tenant.slug == filters.tenant)
    return paginate(query, (Job.created_at.desc(), Job.id), page, per_page, scalars=False)


@dataclass(frozen=True)
class Product:
    """What a job made, as a link: the endpoint and its arguments, and the words."""
    endpoint: str
    values: dict
    label: str


def products(rows):
    """{job id: Product} for the jobs of `rows` that produced something still there."""
    placement_ids = {(job.params or {}).get(key) for job, _ in rows if job.kind == "drain"
                     for key in ("placement", "to")} - {None}
    names = {}
    if placement_ids:
        names = {str(p.id): p.name for p in db.session.execute(
            select(Placement).where(Placement.id.in_(placement_ids))).scalars()}
    found = {}
    for job, slug in rows:
        made = _product(job, slug, names)
        if made is not None:
            found[job.id] = made
    return found


def _product(job, slug, placement_names):
    params, result = job.params or {}, job.result or {}
    if job.kind in ("export", "deprovision") and job.state == "succeeded" and result.get("path"):
        return Product("jobs.download", {"job_id": job.id}, "Download the export")
    if job.kind in ("move", "drop old copy") and params.get("move"):
        return Product("moves.detail", {"move_id": params["move"]}, "The move")
    if job.kind == "drain" and params.get("placement"):
        source = placement_names.get(params["placement"], "a placement")
        target = placement_names.get(params.get("to"), "another")
        return Product("placements.index", {}, f"Placement {source} → {target}")
    if job.kind == "upgrade":
        return Product("upgrades.index", {}, "Upgrade runs")
    if job.kind in ("provision", "import", "purge") and slug is not None:
        return Product("tenants.detail", {"tenant_id": job.tenant_id}, f"Tenant {slug}")
    return None
