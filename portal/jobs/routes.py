from flask import Blueprint, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import guard_staff_blueprint
from portal.jobs import services
from portal.lifecycle import cancelling, dispatch
from portal.lifecycle.exports import export_file
from portal.models.job import JOB_STATES
from portal.services import jobqueue
from portal.services.errors import Refused
from portal.view_helpers import confirmed_action, page_number

bp = Blueprint("jobs", __name__, url_prefix="/admin", template_folder="templates")
guard_staff_blueprint(bp, {"index": "tenants.view", "fragment": "tenants.view", "download": "tenants.export",
                           "retry": "tenants.create", "cancel": "tenants.update"})


@bp.route("/jobs")
def index():
    """Jobs, newest first, filtered by kind, state and tenant slug (a GET form: the URL
    is the filter), each with its tenant and what it produced."""
    filters, errors = services.read_filters(request.args)
    page = services.search_jobs(filters, page=page_number(), per_page=current_app.config["PAGE_SIZE"])
    return render_template("jobs/index.html", page=page, filters=filters, errors=errors,
                           kinds=services.kinds(), states=JOB_STATES, products=services.products(page.items))


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


@bp.route("/jobs/<job_id>/cancel", methods=["POST"])
def cancel(job_id):
    """Cancel a queued or running job where its kind allows (an export; a move before its
    switch); a refusal is flashed with its reason, and nothing changes."""
    job = jobqueue.get_job(job_id)
    confirmed_action(lambda: cancelling.cancel(job, current_user), lambda words: words)
    back = request.form.get("back", "")
    if back == "jobs":
        return redirect(url_for("jobs.index"))
    if job.tenant_id:
        return redirect(url_for("tenants.detail", tenant_id=job.tenant_id))
    return redirect(url_for("jobs.index"))
