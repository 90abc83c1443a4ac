from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import guard_tenant_blueprint
from portal.services.errors import Refused
from portal.tokens import services
from portal.tokens.forms import TokenForm
from portal.view_helpers import confirmed_action, show_refusal

bp = Blueprint("tokens", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"index": "tokens.view", "create": "tokens.create", "revoke": "tokens.delete"})




@bp.route("/tokens")
def index(form=None, status=200):
    return render_template("tokens/index.html", tokens=services.listing_with_state(), form=form or TokenForm(),
                           plain=FlaskForm()), status


@bp.route("/tokens", methods=["POST"])
def create():
    form = TokenForm()
    if form.validate_on_submit():
        try:
            row, token = services.create(form.name.data, form.scopes.data, form.days.data, current_user)
        except Refused as exc:
            show_refusal(form, exc, "name")
        else:
            return render_template("tokens/created.html", row=row, token=token)
    return index(form, 400)


@bp.route("/tokens/<token_id>/revoke", methods=["POST"])
def revoke(token_id):
    confirmed_action(lambda: services.revoke(token_id, current_user), "Token revoked: it stops working at once.")
    return redirect(url_for("tokens.index"))
