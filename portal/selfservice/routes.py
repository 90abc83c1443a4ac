from flask import Blueprint, abort, render_template

from portal.auth.guards import guard_tenant_blueprint
from portal.selfservice import services

bp = Blueprint("selfservice", __name__, template_folder="templates")
guard_tenant_blueprint(bp, {"home": "member", "orders": "member", "order": "member"})


@bp.route("/")
def home():
    return render_template("selfservice/home.html", usage=services.usage_summary())


@bp.route("/orders")
def orders():
    return render_template("selfservice/orders.html", orders=services.latest_orders())


@bp.route("/orders/<order_id>")
def order(order_id):
    found = services.get_order(order_id)
    if found is None:
        abort(404)
    return render_template("selfservice/order.html", order=found)
