from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.guards import guard_tenant_blueprint
from portal.auth.tenant_roles import ACTIONS, RESOURCES
from portal.roles import services
from portal.roles.forms import RoleForm
from portal.services.errors import Refused
from portal.view_helpers import confirmed_action

bp = Blueprint("roles", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"index": "roles.view", "new": "roles.create", "create": "roles.create",
                            "edit": "roles.view", "update": "roles.update", "delete": "roles.delete"})




def _editor(form, role=None, chosen=(), error=None, status=200):
    return render_template("roles/edit.html", form=form, role=role, chosen=set(chosen), error=error,
                           resources=RESOURCES, actions=ACTIONS), status


@bp.get("/roles")
def index():
    return render_template("roles/index.html", roles=services.list_roles(), resources=RESOURCES,
                           actions=ACTIONS, form=FlaskForm())


@bp.get("/roles/new")
def new():
    return _editor(RoleForm())


@bp.post("/roles/new")
def create():
    form = RoleForm()
    chosen = request.form.getlist("permissions")
    if form.validate_on_submit():
        try:
            services.create_role(form.name.data, chosen, current_user)
        except Refused as exc:
            return _editor(form, chosen=chosen, error=exc, status=400)
        flash(f"Role {form.name.data.strip()} created.", "success")
        return redirect(url_for("roles.index"))
    return _editor(form, chosen=chosen, status=400)


@bp.get("/roles/<key>")
def edit(key):
    role = services.get_custom_role(key)
    return _editor(RoleForm(name=role.name), role=role, chosen=role.permissions)


@bp.post("/roles/<key>")
def update(key):
    role = services.get_custom_role(key)
    form = RoleForm()
    chosen = request.form.getlist("permissions")
    if form.validate_on_submit():
        try:
            services.update_role(key, form.name.data, chosen, current_user)
        except Refused as exc:
            return _editor(form, role=role, chosen=chosen, error=exc, status=400)
        flash(f"Role {form.name.data.strip()} saved.", "success")
        return redirect(url_for("roles.index"))
    return _editor(form, role=role, chosen=chosen, status=400)


@bp.post("/roles/<key>/delete")
def delete(key):
    services.get_custom_role(key)
    confirmed_action(lambda: services.delete_role(key, current_user), "Role deleted.")
    return redirect(url_for("roles.index"))
