"""`/healthz` and `/readyz`: for load balancers, orchestrators and `make run`'s start-up check.

- `/healthz`: the process answers (200, `{"status": "ok"}`); it asks nothing of anyone.
- `/readyz`: the process can serve: the registry database answers, Redis answers, the
  registry's migrations are at the head of the code's history and the tenant history's
  head is known. 200 `{"status": "ready", "checks": {...}}`, else 503 `{"status": "not
  ready", "failing": ["redis", ...], "checks": {...}}`. The reasons say what is wrong, not
  where (no address, no URL): the answer is public; the log has the details.

Both answer on any host, with no tenant, no sign-in, no rate limit (the resolver lets
them through: portal/tenancy/resolve.py), and are answered the same from any address.
"""
import logging
import os

import redis
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal.dbsetup import ROOT, tenant_head
from portal.extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


def _bare_path_only():
    if request.environ.get("portal.tenant") is not None:  # /t/<slug>/readyz: not this
        abort(404)


@bp.get("/healthz")
def healthz():
    _bare_path_only()
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    _bare_path_only()
    checks = readiness(current_app._get_current_object())
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        response = jsonify(status="not ready", failing=failing, checks=checks)
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response
    return jsonify(status="ready", checks=checks)


def readiness(app):
    """{check: "ok" or what is wrong} for the database, Redis and the migrations."""
    checks = {}
    current = None
    try:
        db.session.execute(text("select set_config('statement_timeout', '2000', true)"))
        current = set(db.session.execute(text("select version_num from registry.alembic_version")).scalars())
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        log.warning("readiness: the registry database: %s", str(getattr(exc, "orig", exc)).strip())
        checks["database"] = "the registry database does not answer"
    finally:
        db.session.rollback()
    try:
        app.extensions["portal.redis"].ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        log.warning("readiness: Redis: %s", exc)
        checks["redis"] = "Redis does not answer"
    if current is None:
        checks["migrations"] = "unknown: the registry database does not answer"
    else:
        heads = app.extensions.get("portal.history_heads")
        if heads is None:  # the code's histories do not change while it runs
            heads = app.extensions["portal.history_heads"] = (registry_heads(), tenant_head())
        checks["migrations"] = migration_problem(current, *heads) or "ok"
    return checks


def registry_heads():
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(ROOT, "migrations", "registry"))
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())


def migration_problem(current, heads, tenant_head_revision):
    """What is wrong with the registry's revisions `current` against the code's `heads`,
    and the tenant history's head; None when nothing."""
    if not current:
        return "the registry database has no migrations applied: run the migrations"
    if set(current) != set(heads):
        return (f"the registry database is at {', '.join(sorted(current))}, the code at "
                f"{', '.join(sorted(heads))}: run the migrations")
    if not tenant_head_revision:
        return "the tenant history has no head"
    return None
