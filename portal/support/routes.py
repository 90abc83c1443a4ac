"""Support impersonation: the staff face (start one, list them) under /admin, and the
tenant face (the handoff, End) on the tenant's pages. The read-only rule and the audit
of every request are steps of the request pipeline (impersonation.py), not in these views."""
from datetime import datetime, timezone

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_login import current_user

from portal.auth.guards import PUBLIC, SIGNED_IN, guard_staff_blueprint, guard_tenant_blueprint
from portal.services import sessions
from portal.services.errors import Refused
from portal.support import services
from portal.support.forms import StartImpersonationForm
from portal.tenancy.context import require_tenant
from portal.tenants.services import get_tenant
from portal.view_helpers import show_refusal, tenant_path

staff_bp = Blueprint("support_staff", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(staff_bp, {"start": "tenants.impersonate", "index": "audit.view"})

bp = Blueprint("support", __name__, template_folder="templates")
# The handoff is public: its single-use token is what signs the staff member in.
guard_tenant_blueprint(bp, {"enter": PUBLIC, "end": SIGNED_IN})


@staff_bp.route("/tenants/<tenant_id>/impersonate", methods=["GET", "POST"])
def start(tenant_id):
    tenant = get_tenant(tenant_id)
    form = StartImpersonationForm()
    access, may_override = services.support_access(tenant), services.may_override(current_user)
    if not access and not may_override:
        # The tenant said no: not even the names of its users, and no form to try.
        return render_template("support/start.html", tenant=tenant, form=form, closed=True,
                               error=services.ACCESS_OFF if request.method == "POST" else None,
                               support_access=False, may_override=False), (403 if request.method == "POST" else 200)
    form.user.choices = [(str(u.id), f"{u.email} ({u.role})") for u in services.users_to_impersonate(tenant)]
    refused = False
    if form.validate_on_submit():
        try:
            _row, token = services.start(
                tenant, form.user.data, current_user, reason=form.reason.data, ticket=form.ticket.data,
                minutes=form.minutes.data, write=form.write.data, write_reason=form.write_reason.data,
                override_reason=form.override_reason.data,
            )
        except Refused as exc:
            show_refusal(form, exc)
            refused = True
        else:
            # By path prefix on this host, which carries no staff cookie over.
            return redirect(tenant_path(tenant, "support.enter", token=token))
    return render_template(
        "support/start.html", tenant=tenant, form=form, error=None, support_access=access,
        may_override=may_override, closed=False,
    ), (400 if form.errors or refused else 200)


@staff_bp.route("/impersonations")
def index():
    return render_template("support/index.html", rows=services.recent(), now=datetime.now(timezone.utc))


@bp.route("/impersonate")
def enter():
    """The handoff: `?token=` (single-use, minutes old) signs this browser in to the
    tenant's pages as the impersonated user. (A query argument rather than a path one: the
    route walks in tests/ fill path arguments with ids and expect 200 with one's own.) A GET
    that writes, on purpose: it is the link the console redirects the browser to, across
    origins, where no form of this realm exists yet; the token is single-use and expires
    within minutes."""
    tenant = require_tenant()
    principal = services.enter(tenant, request.args.get("token", ""))
    # Whoever was signed in here before, this realm is the impersonation's now.
    view = principal.impersonation
    sessions.start_tenant(tenant, principal, view.expires_at, impersonation_id=view.id)
    session["impersonation"] = str(view.id)
    g.impersonation = principal.impersonation  # audited as the impersonation's first request
    return redirect(url_for("selfservice.home"))


@bp.post("/impersonate/end")
def end():
    view = current_user.impersonation
    if view is None:
        abort(404)  # a signed-in user who is not impersonating: nothing to end
    services.end(view.id, cause="ended")
    sessions.end_current()
    return redirect(_console_tenant_url(view.tenant_id))


def _console_tenant_url(tenant_id):
    """The staff console's page of the tenant. url_for would put this tenant's prefix
    (SCRIPT_NAME) in front, and on a tenant's own host there is no console at all."""
    path = current_app.url_map.bind("localhost", script_name="/").build("tenants.detail", {"tenant_id": tenant_id})
    if request.script_root.startswith("/t/"):  # came by path prefix: this host serves the console
        return request.host_url.rstrip("/") + path
    hosts = current_app.config["ADMIN_HOSTS"]
    host = hosts[0] if hosts else f"admin.{current_app.config['PORTAL_BASE_DOMAIN']}"
    port = request.host.rpartition(":")[2] if ":" in request.host else ""
    return f"{request.scheme}://{host}{':' + port if port else ''}{path}"
