import uuid

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal.auth.guards import guard_staff_blueprint
from portal.lifecycle import moves
from portal.lifecycle.placements import all_placements
from portal.models import TenantMove
from portal.moves.forms import MoveForm
from portal.services import jobqueue
from portal.services.errors import Refused
from portal.services.rows import registry_row
from portal.tenants.services import get_tenant
from portal.view_helpers import confirmed_action, show_refusal

bp = Blueprint("moves", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {"index": "tenants.view", "new": "tenants.update", "detail": "tenants.view",
                           "fragment": "tenants.view", "cancel": "tenants.update", "drop_old_copy": "tenants.update"})


@bp.route("/moves")
def index():
    return render_template("moves/index.html", rows=moves.recent())


@bp.route("/tenants/<tenant_id>/move", methods=["GET", "POST"])
def new(tenant_id):
    tenant = get_tenant(tenant_id)
    form = MoveForm(tier=request.args.get("tier", "silo" if tenant.tier != "silo" else "pool"))
    form.placement.choices = [SelectChoice("", "The emptiest with room")] + [
        SelectChoice(str(p.id), f"{p.name} ({n} of {p.capacity})") for p, n in all_placements()]
    if form.validate_on_submit():
        try:
            move, job = moves.request_move(tenant, form.tier.data,
                                           uuid.UUID(form.placement.data) if form.placement.data else None,
                                           current_user, form.max_freeze_ms.data)
        except Refused as exc:
            show_refusal(form, exc, "tier")
        else:
            jobqueue.enqueue(job)
            flash(f"Moving {tenant.slug} to {move.to_tier}: it keeps working meanwhile.", "success")
            return redirect(url_for("moves.detail", move_id=move.id))
    plan = moves.what_moves(tenant) if tenant.status in ("active", "suspended") else None
    return render_template("moves/new.html", tenant=tenant, form=form, plan=plan,
                           default_freeze=current_app.config["MOVE_MAX_FREEZE_MS"],
                           history=moves.moves_of(tenant.id)), (400 if form.errors else 200)


def _move(move_id):
    return registry_row(TenantMove, move_id)


@bp.route("/moves/<move_id>")
def detail(move_id):
    move = _move(move_id)
    return render_template("moves/detail.html", move=move, tenant=get_tenant(move.tenant_id),
                           job=jobqueue.get(move.job_id) if move.job_id else None)


@bp.route("/moves/<move_id>/fragment")
def fragment(move_id):
    """The progress panel alone, for the page to poll."""
    move = _move(move_id)
    return render_template("moves/_progress.html", move=move, job=jobqueue.get(move.job_id) if move.job_id else None)


@bp.route("/moves/<move_id>/cancel", methods=["POST"])
def cancel(move_id):
    move = _move(move_id)
    confirmed_action(lambda: moves.cancel(move, current_user), "Cancelling: the move undoes what it made.")
    return redirect(url_for("moves.detail", move_id=move.id))


@bp.route("/moves/<move_id>/drop-old-copy", methods=["POST"])
def drop_old_copy(move_id):
    move = _move(move_id)
    confirmed_action(lambda: jobqueue.enqueue(moves.request_drop(move, current_user)),
                     "The old copy is being dropped.")
    return redirect(url_for("moves.detail", move_id=move.id))
