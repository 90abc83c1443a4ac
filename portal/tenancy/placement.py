"""Sessions for the current tenant's placement.

Every transaction of a tenant session starts with
`select set_config('app.tenant_id', :id, true)`: a bound parameter, local to the
transaction (so a pooled connection carries nothing into the next one, and it stays
safe behind PgBouncer's transaction pooling). To save the round trip, the call is sent
in the same round trip as the transaction's first statement (psycopg2 runs the two
statements of one `execute` together and returns the last one's result).

Only the pool tier exists so far: its tables live in schema `tenant_data` of the
registry database and are reached through the application role.
"""
import uuid
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.extensions import Session as RegistrySession
from portal.extensions import db
from portal.tenancy.context import require_tenant

_PENDING = "portal.pending_tenant_id"
_SET_TENANT = "select set_config('app.tenant_id', %(_portal_tenant_id)s, true); "


class TenantSession(Session):
    """A session whose transactions are bound to one tenant (see module doc)."""


@event.listens_for(TenantSession, "after_begin")
def _mark_tenant_pending(session, transaction, connection):
    connection.info[_PENDING] = session.info["tenant_id"]
    session.info["_connection_info"] = connection.info


@event.listens_for(RegistrySession, "after_begin")
def _mark_no_tenant(session, transaction, connection):
    # The registry session says "no tenant" explicitly: whatever ran before on this
    # connection in the same transaction, tenant rows stay invisible to it.
    connection.info[_PENDING] = ""
    session.info["_connection_info"] = connection.info


@event.listens_for(TenantSession, "after_transaction_end")
@event.listens_for(RegistrySession, "after_transaction_end")
def _clear_pending(session, transaction):
    # A transaction that ended before running a statement must not hand its tenant
    # to whoever uses the connection next.
    info = session.info.pop("_connection_info", None)
    if info is not None:
        info.pop(_PENDING, None)


def install_engine_hooks(engine):
    """Send the pending set_config with the first statement of the transaction."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _piggyback_tenant(conn, cursor, statement, parameters, context, executemany):
        tenant_id = conn.info.pop(_PENDING, None)  # "" means: no tenant
        if tenant_id is None:
            return statement, parameters
        if executemany or not isinstance(parameters, dict):
            cursor.execute(_SET_TENANT.rstrip("; "), {"_portal_tenant_id": tenant_id})
            return statement, parameters
        return _SET_TENANT + statement, {**parameters, "_portal_tenant_id": tenant_id}

    @event.listens_for(engine, "checkin")
    def _forget_pending(dbapi_connection, connection_record):
        connection_record.info.pop(_PENDING, None)


def tenant_session(tenant=None, bind=None):
    """A session on `tenant`'s placement (default: the current tenant).

    `bind` joins an open connection (a provisioning step that must commit together
    with its registry row). Use as `with tenant_session() as s: ...; s.commit()`.
    """
    tenant = tenant or require_tenant()
    if tenant.tier != "pool":
        raise NotImplementedError(f"tier {tenant.tier!r} is not served yet")
    test_bind = current_app.extensions.get("portal.test_bind")
    bind = bind if bind is not None else (test_bind if test_bind is not None else db.engine)
    return TenantSession(
        bind=bind,
        info={"tenant_id": str(tenant.id)},
        expire_on_commit=False,
        join_transaction_mode="create_savepoint" if test_bind is not None else "conditional_savepoint",
    )


@contextmanager
def tenant_transaction(tenant=None, bind=None):
    """A tenant session in one transaction: committed at the end, rolled back on error."""
    with tenant_session(tenant, bind) as session:
        with session.begin():
            yield session


def get_row(session, model, row_id, tenant=None):
    """The current tenant's row `row_id` of `model`, or None: another tenant's id, a
    malformed id and a missing row are all the same None (so routes answer 404)."""
    tenant = tenant or require_tenant()
    try:
        key = uuid.UUID(str(row_id))
    except ValueError:
        return None
    return session.get(model, (tenant.id, key))
