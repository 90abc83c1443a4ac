from flask import Blueprint, flash, make_response, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import guard_tenant_blueprint
from portal.services.errors import Refused
from portal.tokens import services
from portal.tokens.forms import TokenForm
from portal.view_helpers import confirmed_action, keep_for_next_page, no_store, show_refusal, take_from_last_page

bp = Blueprint("tokens", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"index": "tokens.view", "create": "tokens.create", "created": "tokens.create",
                            "revoke": "tokens.delete"})


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
            # Redirect after the POST (a reload makes no second token); the next page shows
            # the secret once (it is kept only as a hash).
            keep_for_next_page("token", {"name": row.name, "token": token})
            return redirect(url_for("tokens.created"))
    return index(form, 400)


@bp.get("/tokens/created")
def created():
    made = take_from_last_page("token")
    if made is None:
        flash("A token is shown once, on the page that follows its making; "
              "if it was not copied, revoke it and make another.", "info")
        return redirect(url_for("tokens.index"))
    return no_store(make_response(render_template("tokens/created.html", name=made["name"], token=made["token"])))


@bp.route("/tokens/<token_id>/revoke", methods=["POST"])
def revoke(token_id):
    confirmed_action(lambda: services.revoke(token_id, current_user), "Token revoked: it stops working at once.")
    return redirect(url_for("tokens.index"))
