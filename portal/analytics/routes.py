"""Analytics pages: the tenant's dashboard (its users with analytics.view, on a plan with
analytics), the same dashboard for staff from a tenant's page (read only, audited), the
overview across tenants, and the tenant's cache (stats, clear)."""
import redis
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from markupsafe import Markup

from portal.analytics import overview, services
from portal.auth.guards import guard_staff_blueprint, guard_tenant_blueprint
from portal.services.errors import Refused
from portal.tenancy.context import TenantRef, require_tenant
from portal.tenants.services import get_tenant

bp = Blueprint("analytics", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"dashboard": ("analytics.view", "analytics"),
                            "csv": ("analytics.view", "advanced_reports")})
staff_bp = Blueprint("analytics_staff", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(staff_bp, {"overview": "tenants.view", "tenant_dashboard": "tenants.analytics",
                                 "tenant_csv": "tenants.analytics", "clear_cache": "tenants.update"})


def _render(template, ref, page_endpoint, csv_endpoint, endpoint_args, **context):
    """The dashboard of `ref` (a TenantRef), as `template` frames it. The dashboard's own
    HTML is kept in the tenant's cache like its numbers (a repeated view renders only the
    frame); a page with a bad argument is rendered afresh, with its messages."""
    report = services.read_report(ref, request.args)
    advanced = services.advanced(ref)

    def body():
        data, _ = services.results(ref, report)
        return render_template("analytics/_dashboard.html", report=report, data=data, advanced=advanced,
                               page_endpoint=page_endpoint, csv_endpoint=csv_endpoint, endpoint_args=endpoint_args)

    if report.errors:
        html, from_cache = body(), False
    else:
        html, from_cache = services.cached_html(ref, page_endpoint, report, advanced, body)
    return render_template(template, dashboard=Markup(html), from_cache=from_cache, **context), \
        (400 if report.errors else 200)


def _csv(tenant, filename_prefix):
    """One table of the dashboard as CSV; a bad argument: 400 naming it, as text."""
    report = services.read_report(tenant, request.args)
    table = request.args.get("table", "")
    try:
        if report.errors:
            field = next(iter(report.errors))
            raise Refused(f"{field}: {report.errors[field]}", field)
        body = services.csv_of(tenant, report, table)
    except Refused as exc:
        return Response(exc.message + "\n", status=400, mimetype="text/plain")
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename_prefix}-{table}-{report.start}-{report.end}.csv"'})


@bp.route("/analytics")
def dashboard():
    return _render("analytics/dashboard.html", require_tenant(), "analytics.dashboard", "analytics.csv", {})


@bp.route("/analytics/export.csv")
def csv():
    return _csv(require_tenant(), require_tenant().slug)


@staff_bp.route("/analytics", endpoint="overview")
def overview_page():
    return render_template("analytics/overview.html", data=overview.overview())


@staff_bp.route("/tenants/<tenant_id>/analytics")
def tenant_dashboard(tenant_id):
    tenant = services.staff_read(tenant_id, "dashboard", request.args)
    return _render("analytics/staff_dashboard.html", TenantRef.of(tenant), "analytics_staff.tenant_dashboard",
                   "analytics_staff.tenant_csv", {"tenant_id": tenant.id}, tenant=tenant)


@staff_bp.route("/tenants/<tenant_id>/analytics/export.csv")
def tenant_csv(tenant_id):
    tenant = services.staff_read(tenant_id, "csv", request.args)
    return _csv(TenantRef.of(tenant), tenant.slug)


@staff_bp.route("/tenants/<tenant_id>/cache/clear", methods=["POST"])
def clear_cache(tenant_id):
    tenant = get_tenant(tenant_id)
    if FlaskForm().validate_on_submit():
        try:
            removed = services.clear_cache(tenant)
        except redis.RedisError:
            flash("Redis cannot be reached: the cache was not cleared (dashboards answer from the database).",
                  "error")
        else:
            flash(f"Cache cleared: {removed} entries removed.", "success")
    return redirect(url_for("tenants.detail", tenant_id=tenant.id) + "#cache")
