"""Staff console: the tenant registry."""
import uuid
from datetime import datetime, timezone

import redis
from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms.fields.choices import SelectChoice

from portal.audit.services import recent_for_tenant
from portal.auth.guards import guard_staff_blueprint
from portal.auth.staff_roles import role_may
from portal.domains import services as domains
from portal.domains.forms import DomainForm
from portal.lifecycle import exports, moves, provisioning, retire, states
from portal.lifecycle.placements import all_placements
from portal.models import TENANT_STATUSES, TENANT_TIERS, WITH_STORAGE
from portal.plans import services as plan_services
from portal.plans.forms import override_form
from portal.services import cache, entitlements, jobqueue
from portal.services.errors import Refused
from portal.tenants import listing, services
from portal.tenants.forms import ChangePlanForm, ConfirmForm, CreateTenantForm, ImportForm, ReasonForm, RenameForm
from portal.view_helpers import confirmed_action, show_refusal

bp = Blueprint("tenants", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(
    bp,
    {
        "index": "tenants.view",
        "list_csv": "tenants.view",
        "detail": "tenants.view",
        "create": "tenants.create",
        "rename": "tenants.update",
        "change_plan": "tenants.update",
        "add_domain": "tenants.update",
        "suspend": "tenants.suspend",
        "resume": "tenants.suspend",
        "discard": "tenants.create",
        "export": "tenants.export",
        "deprovision": "tenants.delete",
        "purge": "tenants.delete",
        "import_export": "tenants.create",
        "invite_first_admin": "tenants.update",
        "start_maintenance": "tenants.suspend",
        "end_maintenance": "tenants.suspend",
    },
)


def _plan_choices():
    return [SelectChoice(p.code, p.name) for p in plan_services.plans(include_retired=False)]


TIER_CHOICES = [
    SelectChoice("", "The plan's default"),
    SelectChoice("pool", "pool: shared tables under row-level security"),
    SelectChoice("bridge", "bridge: a schema of its own"),
    SelectChoice("silo", "silo: a database of its own"),
]


def _placement_choices():
    return [SelectChoice("", "The emptiest with room")] + [
        SelectChoice(str(p.id), f"{p.name} ({n} of {p.capacity})") for p, n in all_placements()
    ]


@bp.route("/")
@bp.route("/tenants")
def index():
    """The registry in keyset pages (portal/tenants/listing.py): ?after= / ?before= a
    row's cursor, ?last=1 the last page."""
    args = request.args
    filters = listing.Filters.from_args(args)
    page = listing.keyset_page(filters, after=args.get("after"), before=args.get("before"),
                               last=args.get("last") == "1", per_page=current_app.config["PAGE_SIZE"])
    return render_template(
        "tenants/index.html", page=page, filters=filters, base_args=filters.args(), sort=filters.sort,
        direction=filters.direction, plans=plan_services.plans(), statuses=TENANT_STATUSES, tiers=TENANT_TIERS,
        search_mode=listing.search_mode(),
    )


@bp.route("/tenants.csv")
def list_csv():
    """The list with its filters and sort, every row, as CSV streamed as it is read."""
    filters = listing.Filters.from_args(request.args)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Response(listing.csv_stream(filters), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="tenants-{stamp}.csv"'})


@bp.route("/tenants/new", methods=["GET", "POST"])
def create():
    form = CreateTenantForm()
    form.plan.choices = _plan_choices()
    form.tier.choices = TIER_CHOICES
    form.placement.choices = _placement_choices()
    if form.validate_on_submit():
        try:
            tenant, job = provisioning.request_tenant(
                form.slug.data.strip(), form.name.data, form.plan.data, form.admin_email.data,
                actor=current_user, tier=form.tier.data or None,
                placement_id=uuid.UUID(form.placement.data) if form.placement.data else None,
            )
        except Refused as exc:
            show_refusal(form, exc)
        else:
            jobqueue.enqueue(job)
            flash(f"Tenant {tenant.slug} is being provisioned.", "success")
            return redirect(url_for("tenants.detail", tenant_id=tenant.id))
    return render_template("tenants/new.html", form=form), (400 if form.errors else 200)


@bp.route("/tenants/<tenant_id>")
def detail(tenant_id):
    tenant = services.get_tenant(tenant_id)
    return render_detail(tenant)


# The staff tenant page's sections (tabs), in order; each is a panel of tenants/detail.html.
SECTIONS = (("overview", "Overview"), ("plan", "Plan and limits"), ("domains", "Domains"), ("data", "Data"),
            ("danger", "Danger zone"))


def render_detail(tenant, status=200, **forms):
    """The staff tenant page; `forms` re-shows one as posted, with its errors (here, and
    from the override form of portal/plans/)."""
    archived = tenant.status == "archived"
    # An archived tenant's latest job is its purge, scheduled for the end of retention: not
    # work under way. The page says when it runs and links the deprovisioning's export.
    scheduled_purge = jobqueue.scheduled_purge(tenant.id) if archived else None
    job = jobqueue.latest_for_tenant(tenant.id, exclude=scheduled_purge)
    rename_form = forms.get("rename_form") or RenameForm(name=tenant.name)
    plan_form = forms.get("plan_form") or ChangePlanForm(plan=tenant.plan_code)
    plan_form.plan.choices = _plan_choices()
    can_update = role_may(current_user.role, "tenants.update")
    return render_template(
        "tenants/detail.html",
        tenant=tenant,
        sections=[(key, label) for key, label in SECTIONS if key != "danger" or can_update],
        summary=services.tenant_summary(tenant),
        storage=services.storage_facts(tenant),
        rename_form=rename_form,
        plan_form=plan_form,
        reason_form=forms.get("reason_form") or ReasonForm(),
        maintenance_form=forms.get("maintenance_form") or ReasonForm(prefix="maintenance"),
        domain_form=forms.get("domain_form") or DomainForm(),
        confirm_form=forms.get("confirm_form") or ConfirmForm(),
        purge_form=forms.get("purge_form") or ConfirmForm(prefix="purge"),
        plain_form=FlaskForm(),
        events=recent_for_tenant(tenant.id),
        job=job,
        scheduled_purge=scheduled_purge,
        export_job=jobqueue.latest_export(tenant.id, "deprovision") if archived else None,
        move=moves.under_way(tenant.id) or next(iter(moves.moves_of(tenant.id, 1)), None),
        first_admin=services.first_admin(tenant),
        granted=entitlements.for_tenant(tenant.id, tenant.plan_code),
        overrides=plan_services.overrides_of(tenant),
        override_form=forms.get("override_form") or override_form(),
        features=entitlements.FEATURES,
        limits=entitlements.LIMITS,
        with_storage=WITH_STORAGE,
        cache_stats=_cache_stats(tenant.id),
    ), status


def _cache_stats(tenant_id):
    try:
        return cache.stats(tenant_id)
    except redis.RedisError:
        return None


def _apply(tenant, form, form_key, action):
    """Validate `form`, run `action`; on refusal re-render the page with the message."""
    if form.validate_on_submit():
        try:
            action()
        except Refused as exc:
            show_refusal(form, exc)
        else:
            return redirect(url_for("tenants.detail", tenant_id=tenant.id))
    return render_detail(tenant, 400, **{form_key: form})


@bp.route("/tenants/<tenant_id>/rename", methods=["POST"])
def rename(tenant_id):
    tenant = services.get_tenant(tenant_id)
    form = RenameForm()
    return _apply(tenant, form, "rename_form",
                  lambda: (services.rename(tenant, form.name.data, current_user), flash("Renamed.", "success")))


@bp.route("/tenants/<tenant_id>/plan", methods=["POST"])
def change_plan(tenant_id):
    tenant = services.get_tenant(tenant_id)
    form = ChangePlanForm()
    form.plan.choices = _plan_choices()
    return _apply(tenant, form, "plan_form",
                  lambda: (plan_services.change_plan(tenant, form.plan.data, current_user),
                           flash(*_plan_changed(tenant))))


def _plan_changed(tenant):
    """The message of a plan change; where the new plan's default tier differs, the move."""
    default = tenant.plan.default_tier
    if default == tenant.tier:
        return "Plan changed.", "success"
    return Markup(f'Plan changed. {escape(tenant.plan.name)} puts its tenants in <strong>{default}</strong>; '
                  f'this one is in {tenant.tier}: <a href="{url_for("moves.new", tenant_id=tenant.id, tier=default)}">'
                  f'move it to {default}</a>.'), "success"


@bp.route("/tenants/<tenant_id>/domains", methods=["POST"])
def add_domain(tenant_id):
    tenant = services.get_tenant(tenant_id)
    form = DomainForm()
    return _apply(tenant, form, "domain_form",
                  lambda: (domains.record_for_tenant(tenant, form.domain.data, current_user),
                           flash("Domain recorded.", "success")))


@bp.route("/tenants/<tenant_id>/invite-admin", methods=["POST"])
def invite_first_admin(tenant_id):
    tenant = services.get_tenant(tenant_id)
    confirmed_action(lambda: services.invite_first_admin(tenant, current_user),
                     lambda message: f"A new link went to {message.to_address}" + (
                         "." if message.transport == "smtp" else ": it waits in the outbox (no mail server)."))
    return redirect(url_for("tenants.detail", tenant_id=tenant.id))


@bp.route("/tenants/<tenant_id>/suspend", methods=["POST"])
def suspend(tenant_id):
    tenant = services.get_tenant(tenant_id)
    form = ReasonForm()
    return _apply(tenant, form, "reason_form",
                  lambda: (states.suspend(tenant, form.reason.data, current_user),
                           flash("Tenant suspended.", "success")))


@bp.route("/tenants/<tenant_id>/resume", methods=["POST"])
def resume(tenant_id):
    tenant = services.get_tenant(tenant_id)
    form = ReasonForm()
    return _apply(tenant, form, "reason_form",
                  lambda: (states.resume(tenant, form.reason.data, current_user),
                           flash("Tenant resumed.", "success")))


@bp.route("/tenants/<tenant_id>/maintenance", methods=["POST"])
def start_maintenance(tenant_id):
    tenant = services.get_tenant(tenant_id)
    form = ReasonForm(prefix="maintenance")
    return _apply(tenant, form, "maintenance_form",
                  lambda: (states.start_maintenance(tenant, form.reason.data, current_user),
                           flash("Maintenance mode: the tenant's writes are refused, reading goes on.", "success")))


@bp.route("/tenants/<tenant_id>/maintenance/end", methods=["POST"])
def end_maintenance(tenant_id):
    tenant = services.get_tenant(tenant_id)
    confirmed_action(lambda: states.end_maintenance(tenant, current_user), "Maintenance mode ended.")
    return redirect(url_for("tenants.detail", tenant_id=tenant.id))


@bp.route("/tenants/<tenant_id>/discard", methods=["POST"])
def discard(tenant_id):
    tenant = services.get_tenant(tenant_id)
    if confirmed_action(lambda: provisioning.discard(tenant, current_user), f"Tenant {tenant.slug} discarded."):
        return redirect(url_for("tenants.index"))
    return redirect(url_for("tenants.detail", tenant_id=tenant.id))


@bp.route("/tenants/<tenant_id>/export", methods=["POST"])
def export(tenant_id):
    tenant = services.get_tenant(tenant_id)
    confirmed_action(lambda: jobqueue.enqueue(exports.request_export(tenant, current_user)), "Export started.")
    return redirect(url_for("tenants.detail", tenant_id=tenant.id))


@bp.route("/tenants/<tenant_id>/deprovision", methods=["POST"])
def deprovision(tenant_id):
    tenant = services.get_tenant(tenant_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            job = retire.request_deprovision(tenant, form.confirm.data, current_user)
        except Refused as exc:
            show_refusal(form, exc)
        else:
            jobqueue.enqueue(job)
            flash("Deprovisioning started: the export is kept for the retention period.", "success")
            return redirect(url_for("tenants.detail", tenant_id=tenant.id))
    return render_detail(tenant, 400, confirm_form=form)


@bp.route("/tenants/<tenant_id>/purge", methods=["POST"])
def purge(tenant_id):
    tenant = services.get_tenant(tenant_id)
    form = ConfirmForm(prefix="purge")
    if form.validate_on_submit():
        try:
            job = retire.request_purge(tenant, form.confirm.data, current_user)
        except Refused as exc:
            show_refusal(form, exc)  # a wrong slug beside the field; a wrong state for the page
        else:
            jobqueue.enqueue(job)
            flash("Purge started.", "success")
            return redirect(url_for("tenants.detail", tenant_id=tenant.id))
    return render_detail(tenant, 400, purge_form=form)


@bp.route("/tenants/import", methods=["GET", "POST"])
def import_export():
    form = ImportForm()
    form.plan.choices = [SelectChoice("", "The exported tenant's plan")] + _plan_choices()
    form.tier.choices = TIER_CHOICES
    form.placement.choices = _placement_choices()
    if form.validate_on_submit():
        path = exports.save_upload(form.archive.data)
        try:
            tenant, job = provisioning.request_import(
                path, form.slug.data.strip(), form.name.data, form.plan.data or None, actor=current_user,
                tier=form.tier.data or None,
                placement_id=uuid.UUID(form.placement.data) if form.placement.data else None,
            )
        except Refused as exc:
            exports.discard_upload(path)
            show_refusal(form, exc)
        else:
            jobqueue.enqueue(job)
            flash(f"Tenant {tenant.slug} is being imported.", "success")
            return redirect(url_for("tenants.detail", tenant_id=tenant.id))
    return render_template("tenants/import.html", form=form), (400 if form.errors else 200)
