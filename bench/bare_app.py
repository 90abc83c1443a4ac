"""The hot path's baseline (bench/hot_path.py): a bare Flask page doing the same read as
`/t/<slug>/orders`, with nothing of the portal around it.

A psycopg2 ThreadedConnectionPool, the latest 50 orders of one pool tenant with an explicit
`WHERE tenant_id = %s` (as the database owner: no row-level security), and a Jinja table
with a navigation bar and a link per row (url_for), as the portal's page has. Served by
gunicorn with the portal's gunicorn.conf.py:

    BARE_DSN=postgresql://... BARE_TENANT_ID=<uuid> gunicorn -c gunicorn.conf.py --chdir bench bare_app:app
"""
import os

from flask import Flask, url_for
from psycopg2.pool import ThreadedConnectionPool

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Orders</title></head>
<body><nav><a href="{{ url_for('orders') }}">Orders</a> <a href="{{ url_for('orders') }}?users">Users</a>
<a href="{{ url_for('orders') }}?plan">Plan</a> <a href="{{ url_for('orders') }}?usage">Usage</a></nav>
<main><h1>Orders</h1><table><thead><tr><th>#</th><th>Customer</th><th>Amount</th><th>Status</th><th>Date</th></tr></thead>
<tbody>{% for o in orders %}<tr><td><a href="{{ url_for('order', order_id=o[0]) }}">{{ o[1] }}</a></td>
<td>{{ o[2] }}</td><td>{{ "{:,.2f}".format(o[3] / 100) }}</td><td>{{ o[4] }}</td>
<td>{{ o[5].date().isoformat() }}</td></tr>{% endfor %}
</tbody></table></main></body></html>"""

app = Flask(__name__)
template = app.jinja_env.from_string(PAGE)  # compiled once, as a template file would be
pool = ThreadedConnectionPool(1, 8, os.environ["BARE_DSN"])
TENANT = os.environ["BARE_TENANT_ID"]


@app.route("/orders")
def orders():
    conn = pool.getconn()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT id, number, customer, amount_cents, status, created_at FROM tenant_data.orders "
                           "WHERE tenant_id = %s ORDER BY created_at DESC LIMIT 50", (TENANT,))
            rows = cursor.fetchall()
        conn.rollback()
    finally:
        pool.putconn(conn)
    return template.render(orders=rows)


@app.route("/orders/<order_id>")
def order(order_id):
    return url_for("orders")
