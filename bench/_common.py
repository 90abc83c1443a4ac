"""Helpers shared by bench scripts: a throwaway database and app, percentiles.

A `Throwaway` makes database `portal_bench_<hex>` on the server named by
PORTAL_BENCH_DATABASE_URL, else PORTAL_TEST_DATABASE_URL, else the local default; an app
whose application role and tenant roles all start with `pb<hex>_`; prepares it as a
deploy does (`setup_database`). `close()` drops the database, every database and role
with the prefix, and the Redis keys of the run, also after a failure.
"""
import math
import os
import re
import sys
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from portal import create_app  # noqa: E402
from portal.dbsetup import setup_database  # noqa: E402

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "correct horse battery staple"


def server_url():
    return make_url(os.environ.get("PORTAL_BENCH_DATABASE_URL") or os.environ.get("PORTAL_TEST_DATABASE_URL")
                    or DEFAULT_SERVER).set(drivername="postgresql+psycopg2")


def redis_url():
    return os.environ.get("PORTAL_BENCH_REDIS_URL") or os.environ.get("PORTAL_TEST_REDIS_URL") \
        or "redis://127.0.0.1:6379/0"


class Throwaway:
    """A database, roles and an app for one bench run; `close()` removes them all."""

    def __init__(self, **config):
        self.run = uuid.uuid4().hex[:8]
        self.database = f"portal_bench_{self.run}"
        self.prefix = f"pb{self.run}_"
        self.redis_prefix = f"pb{self.run}"
        self.server = server_url()
        self.admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
        self.owner_url = self.server.set(database=self.database).render_as_string(hide_password=False)
        self.app = None
        self._config = config

    @property
    def app_role(self):
        return f"{self.prefix}app"

    def open(self, **more):
        """Make the database and the app (`more`: settings known only now)."""
        with self.admin.connect() as conn:
            conn.execute(text(f'create database "{self.database}"'))
        self._config.update(more)
        self.config = {  # what another process needs for an app of its own on this run
            "DATABASE_URL": self.owner_url,
            "PORTAL_APP_ROLE": self.app_role,
            "PORTAL_NAME_PREFIX": self.prefix,
            "PORTAL_REDIS_PREFIX": self.redis_prefix,
            "REDIS_URL": redis_url(),
            "SECRET_KEY": f"bench-{self.run}",
            **self._config,
        }
        self.app = create_app(dict(self.config))
        setup_database(self.app.config)
        return self.app

    def close(self):
        if self.app is not None:
            from portal.extensions import db

            with self.app.app_context():
                db.engine.dispose()
            self.app.extensions["portal.silo_engines"].dispose_all()
            try:
                client = self.app.extensions["portal.redis"]
                for key in client.scan_iter(match=f"{self.redis_prefix}:*", count=500):
                    client.unlink(key)
            except Exception as exc:  # Redis down: nothing of ours to leave behind there
                print(f"(could not clear Redis keys: {exc})", file=sys.stderr)
        pattern = {"p": self.prefix.replace("_", "\\_") + "%"}
        with self.admin.connect() as conn:
            conn.execute(text(f'drop database if exists "{self.database}" with (force)'))
            for (name,) in conn.execute(text("select datname from pg_database where datname like :p"), pattern).all():
                conn.execute(text(f'drop database if exists "{name}" with (force)'))
            roles = [r for (r,) in conn.execute(text("select rolname from pg_roles where rolname like :p"), pattern)]
            for i in range(0, len(roles), 200):
                conn.execute(text("drop role if exists " + ", ".join(f'"{r}"' for r in roles[i:i + 200])))
        self.admin.dispose()

    def __enter__(self):
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()


def percentile(samples, q):
    """Nearest-rank percentile (q in 0..100) of `samples`."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def csrf_token(html):
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html)
    if not match:
        raise RuntimeError("no CSRF token in the page")
    return match.group(1)


def open_to_load(ref, note, actor):
    """A bench tenant (`ref`, a TenantRef, in an app context) made ready for load: its
    first admin's password is PASSWORD (the invitation link closed), its requests a minute
    and API calls a day as high as allowed (still counted, never refused), and an API
    token of that admin with every scope. Returns (the admin's email, the token)."""
    from sqlalchemy import select

    from portal.auth.principals import TenantPrincipal
    from portal.models.plan import LIMIT_RANGES
    from portal.plans import services as plans
    from portal.services.passwords import hash_password
    from portal.tenancy.context import tenant_context
    from portal.tenancy.data import TenantUser
    from portal.tenancy.placement import tenant_session, tenant_transaction
    from portal.tenants.services import get_tenant
    from portal.tokens import services as tokens

    with tenant_transaction(ref) as session:
        admin = session.execute(select(TenantUser).where(TenantUser.role == "admin")).scalars().first()
        admin.password_hash, admin.set_password_token_hash = hash_password(PASSWORD), None
        email = admin.email
    for name in ("requests_per_minute", "api_calls_per_day"):
        plans.set_override(get_tenant(ref.id), f"limit:{name}", str(LIMIT_RANGES[name][1]), None, note, actor)
    with tenant_context(ref):
        with tenant_session(ref) as session:
            maker = TenantPrincipal.of(session.execute(select(TenantUser).where(
                TenantUser.email == email)).scalar_one(), session)
        token = tokens.create(note, list(tokens.SCOPES), None, maker)[1]
    return email, token
