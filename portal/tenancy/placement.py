"""Sessions for the current tenant's placement, in each tier.

- pool: the shared tables of schema `tenant_data`, through the application role;
- bridge: the tenant's schema `t_<id>` (SQLAlchemy's `schema_translate_map` maps
  `tenant_data` onto it), through the application role switched, for the transaction,
  to the tenant's own role (`set_config('role', ..., true)`);
- silo: the tenant's database, through an engine connected as the tenant's own role
  (from the bounded registry in `engines.py`).

Every transaction starts with `select set_config('app.tenant_id', :id, true)`, the plan's
`statement_timeout`, and for bridge `set_config('role', :role, true)`: bound parameters,
local to the transaction
(a pooled connection carries nothing into the next one, and it is safe behind
PgBouncer's transaction pooling). To save a round trip it is sent together with the
transaction's first statement (psycopg2 runs both and returns the last one's result).
Registry sessions send it with no tenant. The role is switched only where it must be:
measured, the extra set_config costs ~19 µs a transaction (docs/performance.md).
"""
import logging
import os
import time
from contextlib import contextmanager

from flask import current_app, g, has_request_context
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from portal.extensions import Session as RegistrySession
from portal.extensions import db
from portal.tenancy.context import get_current_tenant, require_tenant
from portal.tenancy.data import TENANT_SCHEMA
from portal.tenancy.names import database_name, role_name, role_password, schema_name

log = logging.getLogger(__name__)

_LEASE = "portal_request_connection"  # in `g` and in a TenantSession's info
_PENDING = "portal.pending_tenant"
_TX_TENANT = "portal.transaction_tenant"
_STARTED = "portal.statement_started"
_NO_TENANT = ("", None, None)
_SET_TENANT = "select set_config('app.tenant_id', %(_portal_tenant_id)s, true)"
_SET_ROLE = ", set_config('role', %(_portal_role)s, true)"
_SET_TIMEOUT = ", set_config('statement_timeout', %(_portal_timeout)s, true)"


class TenantSession(Session):
    """A session whose transactions are bound to one tenant (see module doc)."""

    def close(self):
        lease = self.info.pop(_LEASE, None)
        try:
            super().close()
        except BaseException:
            if lease is not None:  # in an unknown state: no later session gets it
                RequestConnection.give_back()
            raise
        if lease is not None:
            self.bind = None  # used again after closing, it fails rather than join another's transaction
            lease.lent = False  # the request's next session may have its connection


class RequestConnection:
    """A request's one connection to its own tenant's placement, lent to one tenant session
    at a time (`tenant_session`), and given back to the pool when the request ends.

    A signed-in page opens two sessions one after the other (the user loader's, the
    view's); each from the pool would cost a checkout with its pre-ping (a round trip) and a
    reset on return. Each session still has its own transaction on it (begun, its settings
    sent with its first statement, ended at close), so nothing of one reaches the next.
    A session opened while another holds it (nested) takes a connection of its own from
    the pool, as every session did before: its commit stays its own.

    The connection is held from the request's first session to its end: a silo tenant's
    database connections (its plan's cap, its engine's pool) bound its requests at once in
    a worker, not only its statements at once."""

    def __init__(self, key, connection):
        self.key, self.connection, self.lent = key, connection, False

    @staticmethod
    def key_of(tenant):
        """What decides a tenant session's bind (placement.py `_bind_for`): refs equal in
        it share the request's connection (a service may make its own ref of the tenant)."""
        return tenant.id, tenant.tier, tenant.placement_env, tenant.placement_version, tenant.db_connections

    @staticmethod
    def borrow(tenant, bind):
        """The request's connection for a session on `tenant` through `bind` (an Engine), or
        None: outside a request, for another tenant or this one placed elsewhere (a move
        switched it, or a move's target), or while it is lent."""
        lease = RequestConnection._held(tenant, bind)
        if lease is None or lease.lent:
            return None
        lease.lent = True
        return lease

    @staticmethod
    def open_early(tenant):
        """Check the request's connection to `tenant`'s placement out now, unlent: its pool's
        pre-ping (a round trip) overlaps another wait (portal/quotas/limits.py sends the
        rate-limit script first, and reads where the tenant is placed only after). So it
        makes no silo engine (`tenant` may be a ref a move has just made stale, and a new
        engine could close another tenant's), and a connection that cannot be had is left
        to the first session that needs it: it fails there as it always did."""
        try:
            RequestConnection._held(tenant, _bind_for(tenant, make_engine=False)[0])
        except SQLAlchemyError as exc:
            log.info("the request's connection to %s was not opened early: %s", tenant.id, exc)

    @staticmethod
    def _held(tenant, bind):
        """The request's connection to `tenant` through `bind`, opened if need be (lent or
        not), or None where it does not serve (see `borrow`)."""
        if not has_request_context() or not isinstance(bind, Engine):
            return None
        current, key = get_current_tenant(), RequestConnection.key_of(tenant)
        if current is None or RequestConnection.key_of(current) != key:
            return None
        lease = g.get(_LEASE)
        if lease is not None and lease.lent:
            return lease
        if lease is not None and (lease.key != key or lease.connection.invalidated
                                  or lease.connection.in_transaction()):
            RequestConnection.give_back()  # the current ref was reloaded, or the connection is not clean
            lease = None
        if lease is None:
            lease = RequestConnection(key, bind.connect())
            setattr(g, _LEASE, lease)
        return lease

    @staticmethod
    def give_back(_exc=None):
        """The request's end (a teardown): its connection goes back to the pool."""
        lease = g.pop(_LEASE, None)
        if lease is not None:
            lease.connection.close()


@event.listens_for(TenantSession, "after_begin")
def _mark_tenant_pending(session, transaction, connection):
    connection.info[_PENDING] = (session.info["tenant_id"], session.info["role"], session.info.get("timeout"))
    session.info["_connection_info"] = connection.info


@event.listens_for(RegistrySession, "after_begin")
def _mark_no_tenant(session, transaction, connection):
    # The registry session says "no tenant" explicitly: whatever ran before on this
    # connection in the same transaction, tenant rows stay out of its reach.
    connection.info[_PENDING] = _NO_TENANT
    session.info["_connection_info"] = connection.info


@event.listens_for(TenantSession, "after_transaction_end")
@event.listens_for(RegistrySession, "after_transaction_end")
def _clear_pending(session, transaction):
    # A transaction that ended before running a statement must not hand its tenant
    # to whoever uses the connection next.
    info = session.info.pop("_connection_info", None)
    if info is not None:
        info.pop(_PENDING, None)
        info.pop(_TX_TENANT, None)


class SlowStatements:
    """An app's watch on slow tenant statements: each one at least `ms` long (its
    PORTAL_SLOW_STATEMENT_MS; None: none) is `report`ed as (tenant id, ms, statement).
    Every tenant statement's time goes to `spent` (tenant id, ms), when set: the metrics'
    top tenants by database time (portal/metrics.py; in memory, no round trip)."""

    spent = None

    def __init__(self, ms, report):
        self.ms, self.report = ms, report


def install_engine_hooks(engine, slow=None):
    """Send the pending set_config calls with the first statement of the transaction;
    report slow tenant statements to `slow` (a SlowStatements)."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _piggyback_tenant(conn, cursor, statement, parameters, context, executemany):
        conn.info[_STARTED] = time.perf_counter()
        pending = conn.info.pop(_PENDING, None)
        if pending is None:
            return statement, parameters
        tenant_id, role, timeout = pending
        conn.info[_TX_TENANT] = tenant_id
        values, prefix = {"_portal_tenant_id": tenant_id}, _SET_TENANT
        if role is not None:
            prefix, values["_portal_role"] = prefix + _SET_ROLE, role
        if timeout:
            prefix, values["_portal_timeout"] = prefix + _SET_TIMEOUT, f"{int(timeout)}ms"
        server_side = getattr(cursor, "name", None) is not None  # psycopg2's named cursor
        if executemany or server_side or not isinstance(parameters, dict):
            # A server-side cursor would DECLARE itself over the first statement only,
            # and executemany repeats the statement: send the settings on their own.
            plain = cursor.connection.cursor()
            try:
                plain.execute(prefix, values)
            finally:
                plain.close()
            return statement, parameters
        return f"{prefix}; {statement}", {**parameters, **values}

    @event.listens_for(engine, "after_cursor_execute")
    def _time_statement(conn, cursor, statement, parameters, context, executemany):
        started, tenant_id = conn.info.pop(_STARTED, None), conn.info.get(_TX_TENANT)
        if slow is None or started is None or not tenant_id:
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        if slow.spent is not None:
            slow.spent(tenant_id, elapsed_ms)
        if slow.ms is not None and elapsed_ms >= slow.ms:
            slow.report(tenant_id, elapsed_ms, statement)

    @event.listens_for(engine, "checkin")
    def _forget_pending(dbapi_connection, connection_record):
        connection_record.info.pop(_PENDING, None)
        connection_record.info.pop(_TX_TENANT, None)


def silo_url(tenant, owner_url):
    """The tenant's own URL on its placement: its database, its role."""
    return make_url(owner_url).set(
        drivername="postgresql+psycopg2", database=database_name(tenant.id),
        username=role_name(tenant.id), password=role_password(tenant.id),
    )


def placement_owner_url(url_env):
    """The owner URL of a placement: from the named environment variable, or the registry's."""
    if not url_env:
        return current_app.config["DATABASE_URL"]
    return os.environ[url_env]


def _bind_for(tenant, make_engine=True):
    """(bind, role to switch to or None, join mode) for `tenant`'s placement. Without
    `make_engine`, a silo tenant whose engine is not open has no bind (None)."""
    test_bind = current_app.extensions.get("portal.test_bind")
    if tenant.tier == "pool":
        if test_bind is not None:
            return test_bind, None, "create_savepoint"
        return db.engine, None, "conditional_savepoint"
    if tenant.tier == "bridge":
        engine = db.engine.execution_options(schema_translate_map={TENANT_SCHEMA: schema_name(tenant.id)})
        return engine, role_name(tenant.id), "conditional_savepoint"
    if tenant.tier == "silo":
        engines = current_app.extensions["portal.silo_engines"]
        url = silo_url(tenant, placement_owner_url(tenant.placement_env))
        take = engines.get if make_engine else engines.existing
        return take(tenant.id, url, tenant.db_connections), None, "conditional_savepoint"
    raise ValueError(f"unknown tier {tenant.tier!r}")


def tenant_session(tenant=None, bind=None):
    """A session on `tenant`'s placement (default: the current tenant).

    `bind` joins an open connection (a pool tenant's rows written in the same
    transaction as its registry row). Use as `with tenant_session() as s: ...`: in a
    request, a session on its own tenant borrows the request's connection
    (`RequestConnection`) and hands it on when closed.
    """
    tenant = tenant or require_tenant()
    default_bind, role, mode = _bind_for(tenant)
    lease = RequestConnection.borrow(tenant, default_bind) if bind is None else None
    # The plan's statement timeout guards requests against noisy neighbours; jobs
    # (exports, deletions of a whole tenant) are bounded by the job timeout instead.
    info = {"tenant_id": str(tenant.id), "role": role,
            "timeout": tenant.statement_timeout_ms if has_request_context() else None}
    if lease is not None:
        info[_LEASE] = lease
        bind = lease.connection
    return TenantSession(
        bind=bind if bind is not None else default_bind,
        info=info,
        expire_on_commit=False,
        join_transaction_mode=mode,
    )


def qualified_table(session, name):
    """Tenant table `name` on the session's placement, quoted, for statements written as
    text (a bridge tenant's schema is mapped by SQLAlchemy for compiled statements only)."""
    bind = session.get_bind()
    schema_map = bind.get_execution_options().get("schema_translate_map") or {}
    quote = bind.dialect.identifier_preparer.quote
    return f"{quote(schema_map.get(TENANT_SCHEMA, TENANT_SCHEMA))}.{quote(name)}"


@contextmanager
def tenant_transaction(tenant=None, bind=None):
    """A tenant session in one transaction: committed at the end, rolled back on error."""
    with tenant_session(tenant, bind) as session:
        with session.begin():
            yield session
