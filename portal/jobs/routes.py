from flask import Blueprint, flash, redirect, render_template, send_file, url_for
from flask_wtf import FlaskForm

from portal.auth.guards import guard_staff_blueprint
from portal.lifecycle import dispatch
from portal.lifecycle.exports import export_file
from portal.services import jobqueue
from portal.services.errors import Refused

bp = Blueprint("jobs", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {"index": "tenants.view", "fragment": "tenants.view", "download": "tenants.export",
                           "retry": "tenants.create"})


@bp.route("/jobs")
def index():
    return render_template("jobs/index.html", jobs=jobqueue.recent())


@bp.route("/jobs/<job_id>/fragment")
def fragment(job_id):
    """The progress panel alone, for the page to poll."""
    job = jobqueue.get_job(job_id)
    return render_template("jobs/_progress.html", job=job, form=FlaskForm())


@bp.route("/jobs/<job_id>/download")
def download(job_id):
    path = export_file(jobqueue.get_job(job_id))
    return send_file(path, mimetype="application/zip", as_attachment=True)


@bp.route("/jobs/<job_id>/retry", methods=["POST"])
def retry(job_id):
    job = jobqueue.get_job(job_id)
    if FlaskForm().validate_on_submit():
        try:
            dispatch.retry(job)
        except Refused as exc:
            flash(exc.message, "error")
        else:
            flash("Queued again.", "success")
    if job.tenant_id:
        return redirect(url_for("tenants.detail", tenant_id=job.tenant_id))
    return redirect(url_for("jobs.index"))
