from flask import Blueprint, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm

from portal.auth.guards import guard_tenant_blueprint
from portal.orders import services
from portal.orders.forms import OrderForm
from portal.services.errors import Refused
from portal.view_helpers import confirmed_action, show_refusal

bp = Blueprint("orders", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"index": "orders.view", "detail": "orders.view", "new": "orders.create",
                            "edit": "orders.update", "delete": "orders.delete"})


@bp.route("/orders")
def index():
    return render_template("orders/index.html", orders=services.latest_orders())


@bp.route("/orders/new", methods=["GET", "POST"])
def new():
    form = OrderForm()
    if form.validate_on_submit():
        try:
            order = services.create_order(form.fields())
        except Refused as exc:
            show_refusal(form, exc, "customer")
        else:
            flash(f"Order {order.number} added.", "success")
            return redirect(url_for("orders.detail", order_id=order.id))
    return render_template("orders/edit.html", form=form, order=None), (400 if form.errors else 200)


@bp.route("/orders/<order_id>")
def detail(order_id):
    return render_template("orders/detail.html", order=services.get_order(order_id), form=FlaskForm())


@bp.route("/orders/<order_id>/edit", methods=["GET", "POST"])
def edit(order_id):
    order = services.get_order(order_id)
    form = OrderForm(data={"customer": order.customer, "amount": order.amount_cents / 100, "status": order.status})
    if form.validate_on_submit():
        try:
            order = services.update_order(order_id, form.fields())
        except Refused as exc:
            show_refusal(form, exc, "customer")
        else:
            flash(f"Order {order.number} saved.", "success")
            return redirect(url_for("orders.detail", order_id=order.id))
    return render_template("orders/edit.html", form=form, order=order), (400 if form.errors else 200)


@bp.route("/orders/<order_id>/delete", methods=["POST"])
def delete(order_id):
    if confirmed_action(lambda: services.delete_order(order_id), "Order deleted."):
        return redirect(url_for("orders.index"))
    return redirect(url_for("orders.detail", order_id=order_id))
