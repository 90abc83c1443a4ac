from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice

from portal.auth.guards import guard_staff_blueprint, guard_tenant_blueprint
from portal.plans import services
from portal.plans.forms import AskForm, override_form
from portal.services import entitlements
from portal.services.errors import Refused
from portal.tenancy.context import require_tenant
from portal.tenants import routes as tenant_routes
from portal.tenants.services import get_tenant
from portal.view_helpers import confirmed_action, show_refusal

staff_bp = Blueprint("plans_staff", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(staff_bp, {
    "matrix": "tenants.view", "save": "plans.manage", "add": "plans.manage", "retire": "plans.manage",
    "delete": "plans.manage", "set_override": "tenants.update", "remove_override": "tenants.update",
    "requests": "tenants.view", "decide": "tenants.update",
})
bp = Blueprint("plans", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"plan_page": "plan.view", "ask": "plan.update"})


# -- staff ---------------------------------------------------------------------------------
@staff_bp.route("/plans")
def matrix(errors=None, submitted=None, shrink=None, added=None, status=200):
    """The matrix. Re-shown after a POST with `submitted` (the matrix as typed), its
    `errors` beside their cells ({form key: message}), a `shrink` to confirm, or the add
    form as typed (`added`, its errors under "code" and "name")."""
    rows = [(p, services.tenants_on(p.code)) for p in services.plans()]
    return render_template("plans/matrix.html", rows=rows, features=entitlements.FEATURES,
                           limits=entitlements.LIMITS, form=FlaskForm(), errors=errors or {}, submitted=submitted,
                           shrink=shrink, added=added or {}), status


@staff_bp.route("/plans", methods=["POST"])
def save():
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        changed = services.save_matrix(request.form, current_user, request.form.get("confirm_shrink"))
    except services.MatrixRefused as exc:
        return matrix(errors=exc.errors, submitted=request.form, status=400)
    except services.ShrinkUnconfirmed as exc:  # nothing saved: the page asks to confirm
        return matrix(submitted=request.form, shrink=exc.shrink, status=409)
    except Refused as exc:
        return matrix(errors={exc.field or "matrix": exc.message}, submitted=request.form, status=400)
    flash(f"Saved: {', '.join(changed)}." if changed else "Nothing changed.", "success")
    return redirect(url_for("plans_staff.matrix"))


@staff_bp.route("/plans/new", methods=["POST"])
def add():
    if FlaskForm().validate_on_submit():
        typed = {k: request.form.get(k, "")[:200] for k in ("code", "name")}
        try:
            plan = services.add_plan(typed["code"], typed["name"], current_user)
        except Refused as exc:
            return matrix(errors={exc.field if exc.field in typed else "name": exc.message}, added=typed,
                          status=400)
        flash(f"Plan {plan.name} added: set its features and limits.", "success")
    return redirect(url_for("plans_staff.matrix"))


@staff_bp.route("/plans/<code>/retire", methods=["POST"])
def retire(code):
    confirmed_action(lambda: services.retire_plan(code, current_user),
                     lambda plan: f"{plan.name} is {'retired' if plan.is_retired else 'offered again'}.")
    return redirect(url_for("plans_staff.matrix"))


@staff_bp.route("/plans/<code>/delete", methods=["POST"])
def delete(code):
    confirmed_action(lambda: services.delete_plan(code, current_user), f"Plan {code} deleted.")
    return redirect(url_for("plans_staff.matrix"))


@staff_bp.route("/tenants/<tenant_id>/overrides", methods=["POST"])
def set_override(tenant_id):
    """Save an override; refused, the tenant's page again (400) with the override form as
    typed and its errors beside its fields (template variable `override_form`)."""
    tenant = get_tenant(tenant_id)
    form = override_form()
    if form.validate_on_submit():
        try:
            services.set_override(tenant, form.key.data, form.value.data, form.until.data, form.reason.data,
                                  current_user)
        except Refused as exc:
            show_refusal(form, exc, "value")
        else:
            flash("Override saved.", "success")
            return redirect(url_for("tenants.detail", tenant_id=tenant.id))
    elif "csrf_token" in form.errors:
        abort(400)
    return tenant_routes.render_detail(tenant, 400, override_form=form)


@staff_bp.route("/tenants/<tenant_id>/overrides/<override_id>/delete", methods=["POST"])
def remove_override(tenant_id, override_id):
    tenant = get_tenant(tenant_id)
    confirmed_action(lambda: services.remove_override(tenant, override_id, current_user), "Override removed.")
    return redirect(url_for("tenants.detail", tenant_id=tenant.id))


@staff_bp.route("/plan-requests")
def requests():
    return render_template("plans/requests.html", rows=services.pending_requests(), form=FlaskForm())


DECIDED = {"approve": "Request approved.", "reject": "Request rejected."}


@staff_bp.route("/plan-requests/<request_id>/<any(approve, reject):decision>", methods=["POST"])
def decide(request_id, decision):
    confirmed_action(lambda: services.decide(request_id, decision == "approve", current_user,
                                             request.form.get("note", "")), DECIDED[decision])
    return redirect(url_for("plans_staff.requests"))


# -- tenant admins -------------------------------------------------------------------------


@bp.route("/plan")
def plan_page(form=None, status=200):
    tenant = require_tenant()
    form = form or AskForm()
    form.plan.choices = [SelectChoice(p.code, p.name) for p in services.plans(include_retired=False)
                         if p.code != tenant.plan_code]
    return render_template("plans/tenant_plan.html", granted=entitlements.current(), form=form,
                           plans=services.plans(include_retired=False), features=entitlements.FEATURES,
                           limits=entitlements.LIMITS, history=services.requests_of(tenant.id)), status


@bp.route("/plan", methods=["POST"])
def ask():
    tenant = get_tenant(require_tenant().id)
    form = AskForm()
    form.plan.choices = [SelectChoice(p.code, p.name) for p in services.plans(include_retired=False)]
    if not form.validate_on_submit():
        form.plan.errors = ["Choose one of the plans offered."]
        return plan_page(form, 400)
    try:
        services.request_change(tenant, form.plan.data, current_user)
    except Refused as exc:
        form.plan.errors.append(exc.message)
        return plan_page(form, 400)
    flash("Your request is with our staff; you will see the change here once approved.", "success")
    return redirect(url_for("plans.plan_page"))
