from flask import Blueprint, flash, redirect, render_template, send_file, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import SIGNED_IN, guard_tenant_blueprint
from portal.lifecycle.exports import export_file
from portal.selfservice import services
from portal.selfservice.forms import SettingsForm
from portal.services import tenant_settings
from portal.services.errors import Refused
from portal.tenancy.context import require_tenant
from portal.view_helpers import show_refusal

bp = Blueprint("selfservice", __name__, template_folder="templates")


def landing():
    """`/` on the bare host: staff go to the console; anyone else is told where their
    tenant's pages are."""
    if current_user.is_authenticated and getattr(current_user, "is_staff", False):
        return redirect(url_for("tenants.index"))
    return render_template("selfservice/landing.html")


# Your data (export, download) holds every record of the tenant: it needs settings.update.
guard_tenant_blueprint(bp, {"home": SIGNED_IN,
                            "data": "settings.update", "export": "settings.update",
                            "export_progress": "settings.update", "download": "settings.update",
                            "settings_page": "settings.view", "save_settings": "settings.update"},
                       without_tenant={"home": landing})


@bp.route("/")
def home():
    return render_template("selfservice/home.html", usage=services.usage_summary())


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
    return render_template("selfservice/_export_progress.html", job=services.own_export(job_id))


@bp.route("/data/exports/<job_id>/download")
def download(job_id):
    path = export_file(services.own_export(job_id))
    return send_file(path, mimetype="application/zip", as_attachment=True,
                     download_name=f"{require_tenant().slug}-export.zip")


@bp.get("/settings")
def settings_page():
    form = SettingsForm(data={"name": require_tenant().name, **tenant_settings.current()})
    return render_template("selfservice/settings.html", form=form)


@bp.post("/settings")
def save_settings():
    form = SettingsForm()
    if form.validate_on_submit():
        try:
            changes = tenant_settings.save(form.name.data, form.display_colour.data, form.support_access.data,
                                    form.session_minutes.data, current_user)
        except Refused as exc:
            show_refusal(form, exc, "name")
        else:
            flash("Settings saved." if changes else "Nothing changed.", "success")
            return redirect(url_for("selfservice.settings_page"))
    return render_template("selfservice/settings.html", form=form), (400 if form.errors else 200)
