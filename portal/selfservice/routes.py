from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import guard_tenant_blueprint
from portal.lifecycle.exports import export_file
from portal.selfservice import services
from portal.tenancy.context import require_tenant

bp = Blueprint("selfservice", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"home": "member", "orders": "member", "order": "member",
                            "data": "admin", "export": "admin", "export_progress": "admin",
                            "download": "admin", "analytics": ("member", "analytics"),
                            "audit": "admin"})


@bp.route("/")
def home():
    return render_template("selfservice/home.html", usage=services.usage_summary())


@bp.route("/orders")
def orders():
    return render_template("selfservice/orders.html", orders=services.latest_orders())


@bp.route("/orders/<order_id>")
def order(order_id):
    found = services.get_order(order_id)
    if found is None:
        abort(404)
    return render_template("selfservice/order.html", order=found)


@bp.route("/data")
def data():
    """The tenant's own data: start an export, follow it, download it."""
    return render_template("selfservice/data.html", job=services.latest_export(), form=FlaskForm())


@bp.route("/data/export", methods=["POST"])
def export():
    if FlaskForm().validate_on_submit():
        services.start_export(current_user)
        flash("Your export has started; this page follows it.", "success")
    return redirect(url_for("selfservice.data"))


@bp.route("/data/exports/<job_id>/progress")
def export_progress(job_id):
    job = services.own_export(job_id)
    if job is None:
        abort(404)
    return render_template("selfservice/_export_progress.html", job=job)


@bp.route("/data/exports/<job_id>/download")
def download(job_id):
    job = services.own_export(job_id)
    path = export_file(job) if job is not None else None
    if path is None:
        abort(404)
    return send_file(path, mimetype="application/zip", as_attachment=True,
                     download_name=f"{require_tenant().slug}-export.zip")


@bp.route("/analytics")
def analytics():
    """Orders by day: a feature of the plan (the guard explains where it is missing)."""
    return render_template("selfservice/analytics.html", stats=services.order_stats())


@bp.route("/audit")
def audit():
    """The tenant's own audit log: what its users and our staff did to it."""
    action = request.args.get("action", "").strip()[:64]
    try:
        page_no = int(request.args.get("page", 1))
    except ValueError:
        page_no = 1
    return render_template("selfservice/audit.html", page=services.own_audit_events(action, page_no), action=action)
