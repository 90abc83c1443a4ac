from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import guard_tenant_blueprint
from portal.domains import services
from portal.domains.forms import DomainForm
from portal.services.errors import Refused
from portal.view_helpers import show_refusal

bp = Blueprint("domains", __name__, template_folder="templates")
# Custom domains are a feature of the plan: without it the guard names the plans that have it.
guard_tenant_blueprint(bp, {"index": ("settings.view", "custom_domains"),
                            "add": ("settings.update", "custom_domains"),
                            "verify": ("settings.update", "custom_domains"),
                            "remove": ("settings.update", "custom_domains")})


@bp.get("/domains")
def index(form=None, status=200):
    return render_template("domains/index.html", domains=services.listing(), form=form or DomainForm(),
                           plain=FlaskForm(), max_domains=services.MAX_DOMAINS), status


@bp.post("/domains")
def add():
    form = DomainForm()
    if form.validate_on_submit():
        try:
            row = services.add(form.domain.data, current_user)
        except Refused as exc:
            show_refusal(form, exc, "domain")
        else:
            flash(f"{row.domain} added: create its TXT record, then press Verify.", "success")
            return redirect(url_for("domains.index"))
    return index(form, 400)


@bp.post("/domains/<domain_id>/verify")
def verify(domain_id):
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        row = services.verify(domain_id, current_user)
    except Refused as exc:  # another tenant verified the name first: this claim is gone
        flash(exc.message, "error")
        return redirect(url_for("domains.index"))
    if row.verified_at is not None:
        flash(f"{row.domain} is verified: it now leads to your pages.", "success")
    else:
        flash(f"{row.domain} is not verified yet: {row.last_check_error}.", "error")
    return redirect(url_for("domains.index"))


@bp.post("/domains/<domain_id>/remove")
def remove(domain_id):
    if not FlaskForm().validate_on_submit():
        abort(400)
    domain = services.remove(domain_id, current_user)
    flash(f"{domain} removed: it no longer leads to your pages.", "success")
    return redirect(url_for("domains.index"))
