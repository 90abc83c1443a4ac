"""Settings, read from the environment once, in the factory, and validated there.

Nothing here is read at import time: `load_config()` is called by `create_app()` with
optional overrides (tests pass their own database and Redis URLs).
"""
import os
import secrets

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def _env(name, default=None):
    value = os.environ.get(name)
    return default if value in (None, "") else value


def _int(name, default):
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def load_config(overrides=None):
    env = _env("PORTAL_ENV", "development")
    cfg = {
        "PORTAL_ENV": env,
        "SECRET_KEY": _env("PORTAL_SECRET_KEY"),
        # The owner's URL: runs migrations and provisioning. The application role
        # (below) serves requests on the same server and database.
        "DATABASE_URL": _env("DATABASE_URL"),
        "REDIS_URL": _env("REDIS_URL"),
        # REDIS_URL names one node of a Redis Cluster (the client finds the others). Every
        # command the portal sends touches one slot (keys read together carry the tenant's
        # hash tag); the job queue needs a plain Redis: PORTAL_RQ_REDIS_URL.
        "REDIS_CLUSTER": _env("PORTAL_REDIS_CLUSTER", "0") == "1",
        # The job queue's Redis (RQ): REDIS_URL's when blank. Must not be a cluster.
        "RQ_REDIS_URL": _env("PORTAL_RQ_REDIS_URL"),
        "PORTAL_APP_ROLE": _env("PORTAL_APP_ROLE", "portal_app"),
        "PORTAL_APP_PASSWORD": _env("PORTAL_APP_PASSWORD"),
        # Where the application role's connections go, when not straight to DATABASE_URL's
        # server: a PgBouncer in transaction pooling in front of it (host and port; the
        # database, role and password are DATABASE_URL's and the app role's). The owner's
        # connections (migrations, provisioning, the upgrade runner's lock) stay direct.
        "PORTAL_APP_DATABASE_HOST": _env("PORTAL_APP_DATABASE_HOST"),
        "PORTAL_BASE_DOMAIN": _env("PORTAL_BASE_DOMAIN", "localhost"),
        # Where people reach the portal (scheme, host, port), for links made outside a
        # request (a new tenant's first invitation, made by a worker): `<url>/t/<slug>/...`.
        # Blank: `<scheme>://<slug>.<base domain>/...`.
        "PORTAL_PUBLIC_URL": _env("PORTAL_PUBLIC_URL", ""),
        "PORTAL_ADMIN_HOSTS": _env("PORTAL_ADMIN_HOSTS", "localhost,127.0.0.1"),
        "PORTAL_REDIS_PREFIX": _env("PORTAL_REDIS_PREFIX", "portal"),
        "PORTAL_INSTANCE_DIR": _env("PORTAL_INSTANCE_DIR", os.path.abspath("instance")),
        # Bridge and silo tenants: their roles and databases are named <prefix><tenant id>,
        # and their roles' passwords are derived from this secret (never stored).
        "PORTAL_NAME_PREFIX": _env("PORTAL_NAME_PREFIX", "tenant_"),
        "PORTAL_TENANT_ROLE_SECRET": _env("PORTAL_TENANT_ROLE_SECRET"),
        # Caps on a bridge or silo tenant's own role, enforced by PostgreSQL: connections at
        # once across every process, and a default statement timeout (jobs included; a
        # request's is the plan's, set per transaction).
        "TENANT_ROLE_CONNECTIONS": _int("PORTAL_TENANT_ROLE_CONNECTIONS", 20),
        "TENANT_ROLE_STATEMENT_TIMEOUT_MS": _int("PORTAL_TENANT_ROLE_STATEMENT_TIMEOUT_MS", 30_000),
        # Moves (portal/lifecycle/moves.py): the longest a tenant's writes may be frozen for
        # the final catch-up, validation and switch before the move backs off and tries
        # again (at most three times); how long the old copy is kept after a switch.
        "MOVE_MAX_FREEZE_MS": _int("PORTAL_MOVE_MAX_FREEZE_MS", 2000),
        "MOVE_KEEP_HOURS": _int("PORTAL_MOVE_KEEP_HOURS", 24),
        # A write of a frozen tenant waits this long for the switch before it goes on (to
        # be refused with 503 if the freeze lasts); 0: refused at once.
        "MOVE_HOLD_WRITES_MS": _int("PORTAL_MOVE_HOLD_WRITES_MS", 3000),
        # The old copy stays fenced at least this long after a switch, whatever asks to
        # drop it: a request that began before the switch may still be finishing there (the
        # fence refuses its write; without the fence, the write would land in a copy about
        # to go). Longer than any request lasts.
        "MOVE_MIN_KEEP_SECONDS": _int("PORTAL_MOVE_MIN_KEEP_SECONDS", 300),
        # A fence's DDL (portal/lifecycle/fences.py) waits this long for a lock, so many times.
        "FENCE_LOCK_TIMEOUT_MS": _int("PORTAL_FENCE_LOCK_TIMEOUT_MS", 2000),
        "FENCE_ATTEMPTS": _int("PORTAL_FENCE_ATTEMPTS", 5),
        # Silo engines: at most this many open at once (least recently used disposed),
        # each with a small pool, and a total connection budget across them. The pool keeps
        # what it opens, up to a gunicorn worker's threads (4): an overflow connection is
        # closed on return, so each request past the pool paid a new connection and its
        # authentication (tests/tenancy/test_silo_pools.py counts them).
        "SILO_MAX_ENGINES": _int("PORTAL_SILO_MAX_ENGINES", 32),
        "SILO_POOL_SIZE": _int("PORTAL_SILO_POOL_SIZE", 4),
        "SILO_MAX_OVERFLOW": _int("PORTAL_SILO_MAX_OVERFLOW", 0),
        "SILO_CONNECTION_BUDGET": _int("PORTAL_SILO_CONNECTION_BUDGET", 64),
        # Jobs (RQ): how long one may run; where exports are kept, and for how long after
        # a tenant is deprovisioned before it is purged.
        "JOB_TIMEOUT": _int("PORTAL_JOB_TIMEOUT", 3600),
        "PORTAL_EXPORT_DIR": _env("PORTAL_EXPORT_DIR"),
        "PORTAL_RETENTION_DAYS": _int("PORTAL_RETENTION_DAYS", 30),
        # A running job whose heartbeat is older than this was interrupted.
        "JOB_STALE_SECONDS": _int("PORTAL_JOB_STALE_SECONDS", 60),
        "JOB_HEARTBEAT_SECONDS": _int("PORTAL_JOB_HEARTBEAT_SECONDS", 10),
        # Plans and limits: entitlements cached per process; rate limits fail open (or
        # closed) when Redis is unreachable; storage use cached in Redis.
        "ENTITLEMENTS_CACHE_SECONDS": _int("PORTAL_ENTITLEMENTS_CACHE_SECONDS", 5),
        "RATE_LIMIT_FAIL_OPEN": _env("PORTAL_RATE_LIMIT_FAIL_OPEN", "1") != "0",
        "STORAGE_CACHE_SECONDS": _int("PORTAL_STORAGE_CACHE_SECONDS", 60),
        # /metrics (portal/metrics.py): the addresses or networks that may read it (asking
        # straight, not through a proxy), a bearer token that may read it from anywhere, and
        # how many of the top tenants (by requests, by database time) it names (0 to 100).
        "METRICS_ALLOW": _env("PORTAL_METRICS_ALLOW", "127.0.0.1,::1"),
        "METRICS_TOKEN": _env("PORTAL_METRICS_TOKEN"),
        "METRICS_TOP_TENANTS": _int("PORTAL_METRICS_TOP_TENANTS", 10),
        # A tenant statement at least this slow is counted against the tenant (top consumers).
        "SLOW_STATEMENT_MS": _int("PORTAL_SLOW_STATEMENT_MS", 500),
        # Quotas and Top consumers sort a snapshot of every tenant's figures; a page that
        # finds it older than this refreshes it first (portal/quotas/figures.py).
        "CONSOLE_FIGURES_MAX_AGE_SECONDS": _int("PORTAL_CONSOLE_FIGURES_MAX_AGE_SECONDS", 30),
        # Tenant lookup cache: a short in-process cache in front of Redis.
        "TENANT_CACHE_LOCAL_SECONDS": _int("PORTAL_TENANT_CACHE_LOCAL_SECONDS", 2),
        "TENANT_CACHE_REDIS_SECONDS": _int("PORTAL_TENANT_CACHE_REDIS_SECONDS", 300),
        # Sign-in throttling (portal/services/throttle.py): failures allowed per window, for
        # an account from one address, an account from anywhere, an address in one realm.
        "LOGIN_FAILURES_PER_ACCOUNT": _int("PORTAL_LOGIN_FAILURES_PER_ACCOUNT", 5),
        "LOGIN_FAILURES_PER_ACCOUNT_TOTAL": _int("PORTAL_LOGIN_FAILURES_PER_ACCOUNT_TOTAL", 50),
        "LOGIN_FAILURES_PER_ADDRESS": _int("PORTAL_LOGIN_FAILURES_PER_ADDRESS", 50),
        "LOGIN_THROTTLE_WINDOW": _int("PORTAL_LOGIN_THROTTLE_WINDOW", 900),
        # Argon2id cost; tests lower it, production keeps the library's defaults.
        "ARGON2_TIME_COST": _int("PORTAL_ARGON2_TIME_COST", 3),
        "ARGON2_MEMORY_COST": _int("PORTAL_ARGON2_MEMORY_COST", 65536),
        # Staff sessions end after this long without a request, and this long after sign-in
        # whatever happens (tenant sign-ins last as long as each tenant's settings say).
        "STAFF_SESSION_IDLE_MINUTES": _int("PORTAL_STAFF_SESSION_IDLE_MINUTES", 30),
        "STAFF_SESSION_HOURS": _int("PORTAL_STAFF_SESSION_HOURS", 12),
        "SET_PASSWORD_LINK_HOURS": _int("PORTAL_SET_PASSWORD_LINK_HOURS", 72),
        "PAGE_SIZE": _int("PORTAL_PAGE_SIZE", 50),
        # Mail (invitations, password links): an SMTP server, or none: then every message
        # goes to the outbox (staff page /admin/outbox) and the log.
        "SMTP_HOST": _env("PORTAL_SMTP_HOST"),
        "SMTP_PORT": _int("PORTAL_SMTP_PORT", 25),
        "SMTP_USER": _env("PORTAL_SMTP_USER"),
        "SMTP_PASSWORD": _env("PORTAL_SMTP_PASSWORD"),
        "SMTP_STARTTLS": _env("PORTAL_SMTP_STARTTLS", "0") == "1",
        "MAIL_FROM": _env("PORTAL_MAIL_FROM", "Tenancy Portal <no-reply@localhost>"),
        # Custom domains are verified by a DNS TXT record; these nameservers are asked
        # ("host" or "host:port", comma-separated; empty: the system's resolver).
        "DNS_NAMESERVERS": _env("PORTAL_DNS_NAMESERVERS", ""),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env == "production",
        "WTF_CSRF_TIME_LIMIT": None,
        # pool_recycle: a backend keeps ~50 KiB of catalog cache per tenant schema it has
        # served (measured); renewing connections bounds that memory.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5, "pool_recycle": 1800},
        "TESTING": _env("PORTAL_TESTING") == "1" and env != "production",
        # Tests only (honoured when TESTING): fail at, or stall at ("step:seconds"), a step.
        "PORTAL_FAULT_STEP": _env("PORTAL_FAULT_STEP"),
        "PORTAL_STALL_STEP": _env("PORTAL_STALL_STEP"),
    }
    cfg.update(overrides or {})
    _validate(cfg)
    return cfg


def _validate(cfg):
    if cfg["PORTAL_ENV"] == "production" and not cfg["SECRET_KEY"]:
        raise ConfigError("PORTAL_SECRET_KEY must be set when PORTAL_ENV=production")
    if cfg["PORTAL_ENV"] == "production" and not cfg["PORTAL_TENANT_ROLE_SECRET"]:
        raise ConfigError("PORTAL_TENANT_ROLE_SECRET must be set when PORTAL_ENV=production")
    if not cfg["PORTAL_TENANT_ROLE_SECRET"]:
        # Development only: a fixed value, so that roles made in one run work in the next.
        cfg["PORTAL_TENANT_ROLE_SECRET"] = "development-only-tenant-role-secret"
    if not cfg["SECRET_KEY"]:
        # Development only: a fresh key per process (sessions end on restart).
        cfg["SECRET_KEY"] = secrets.token_hex(32)
    if not cfg["PORTAL_EXPORT_DIR"]:
        cfg["PORTAL_EXPORT_DIR"] = os.path.join(cfg["PORTAL_INSTANCE_DIR"], "exports")
    if not cfg["DATABASE_URL"]:
        raise ConfigError(
            "DATABASE_URL is not set: set it, or start through `make run`, "
            "which starts the embedded PostgreSQL and sets it"
        )
    if not cfg["REDIS_URL"]:
        raise ConfigError("REDIS_URL is not set (make run starts an embedded Redis and sets it)")
    if cfg["REDIS_CLUSTER"] and not cfg["RQ_REDIS_URL"]:
        raise ConfigError("PORTAL_REDIS_CLUSTER=1 needs PORTAL_RQ_REDIS_URL: the job queue (RQ) needs a plain Redis")
    try:
        url = make_url(cfg["DATABASE_URL"])
    except ArgumentError:
        raise ConfigError("DATABASE_URL does not parse as a database URL") from None
    if url.get_backend_name() != "postgresql":
        raise ConfigError("DATABASE_URL must point at PostgreSQL")
    cfg["DATABASE_URL"] = url.set(drivername="postgresql+psycopg2").render_as_string(
        hide_password=False
    )
    cfg["SQLALCHEMY_DATABASE_URI"] = app_role_url(cfg)
    # In the order given: the first is where links to the console from a tenant's own host go.
    cfg["ADMIN_HOSTS"] = tuple(dict.fromkeys(
        h.strip().lower() for h in cfg["PORTAL_ADMIN_HOSTS"].split(",") if h.strip()
    ))


def app_role_url(cfg):
    """The URL the application serves with: the same database as the app role, on the same
    server or through PORTAL_APP_DATABASE_HOST (`host:port`, a pooler in front of it)."""
    url = make_url(cfg["DATABASE_URL"]).set(
        username=cfg["PORTAL_APP_ROLE"], password=cfg["PORTAL_APP_PASSWORD"]
    )
    if cfg.get("PORTAL_APP_DATABASE_HOST"):
        host, _, port = cfg["PORTAL_APP_DATABASE_HOST"].rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError("PORTAL_APP_DATABASE_HOST is host:port (a PgBouncer in front of the registry server)")
        url = url.set(host=host, port=int(port))
    return url.render_as_string(hide_password=False)
