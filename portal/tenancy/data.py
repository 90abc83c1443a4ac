"""The tenant tables: one set of definitions for every tier.

Each table carries `tenant_id` first in its primary key and in every index, and every
table has the same row-level-security policy (see migrations/tenant/). In the pool tier
these tables live in schema `tenant_data`; other tiers map that schema name elsewhere.
"""
import uuid
from datetime import date, datetime
from typing import Optional

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Index, Integer, MetaData, String, Text, func
from sqlalchemy.dialects.postgresql import BIT, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TENANT_SCHEMA = "tenant_data"


class TenantBase(DeclarativeBase):
    metadata = MetaData(schema=TENANT_SCHEMA)


class TenantUser(TenantBase):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_tenant_email", "tenant_id", "email", unique=True),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(120), default="")
    # A built-in role (admin, member, viewer) or the key of one of the tenant's roles.
    role: Mapped[str] = mapped_column(String(40), default="member")
    # NULL until the user follows their set-password link.
    password_hash: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    # sha256 of the single-use set-password token, and its expiry; NULL when none is open.
    set_password_token_hash: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    set_password_expires_at: Mapped[Optional[datetime]] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    # When the last set-password link was used: a reused link is told apart from a wrong one.
    set_password_used_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TenantRole(TenantBase):
    """A custom role: a name and permissions from the matrix in portal/auth/tenant_roles.py."""

    __tablename__ = "roles"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    permissions: Mapped[list] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Order(TenantBase):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_tenant_created", "tenant_id", "created_at"),
                      Index("ux_orders_tenant_number", "tenant_id", "number", unique=True))

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, …: unique within the tenant
    customer: Mapped[str] = mapped_column(String(120))
    amount_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TenantSetting(TenantBase):
    __tablename__ = "settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JSONB)
    note: Mapped[Optional[str]] = mapped_column(Text, nullable=True)


class ApiToken(TenantBase):
    """A tenant's API token: the secret is shown once; only its sha256 is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("uq_api_tokens_tenant_secret", "tenant_id", "secret_hash", unique=True),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(80))
    scopes: Mapped[list] = mapped_column(JSONB)
    secret_hash: Mapped[str] = mapped_column(String(64))
    hint: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(String(254))
    # The maker's id in `users`, re-checked on every request (portal/tokens/services.py).
    # NULL: made before migration t0004 or by the system; such a token is not re-checked.
    created_by_id: Mapped[Optional[uuid.UUID]] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)


class Event(TenantBase):
    """An analytics event: sent through the API, or the tenant's own activity in the
    portal (portal/analytics/events.py records both)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_tenant_occurred", "tenant_id", "occurred_at"),
                      Index("ix_events_tenant_name_occurred", "tenant_id", "name", "occurred_at"))

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(80))
    # The tenant user's id, or an external id sent through the API; NULL: no user.
    user_key: Mapped[Optional[str]] = mapped_column(String(120), nullable=True)
    properties: Mapped[dict] = mapped_column(JSONB, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EventUser(TenantBase):
    """A user seen in the tenant's events, numbered 0, 1, 2, … in the order first seen:
    the number is the user's bit in the roll-ups' bitmaps."""

    __tablename__ = "event_users"
    __table_args__ = (Index("ux_event_users_tenant_idx", "tenant_id", "idx", unique=True),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_key: Mapped[str] = mapped_column(String(120), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


ROLLUP_CHUNK_BITS = 1024  # users per roll-up bitmap (migration t0007 has the same)
ALL_EVENTS = ""  # a roll-up of every event of its day (no event may be named '')


class EventRollup(TenantBase):
    """Events of one name (ALL_EVENTS: of every name) on one UTC day: how many, and which
    users (bit n of block `chunk` is user chunk * ROLLUP_CHUNK_BITS + n). Kept current by
    the ingest; `key` is day|chunk|name (moves and exports track rows by one key column)."""

    __tablename__ = "event_rollups"
    __table_args__ = (Index("ix_event_rollups_tenant_day", "tenant_id", "day"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(80))
    chunk: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(BigInteger)
    users: Mapped[str] = mapped_column(BIT(ROLLUP_CHUNK_BITS))


MAX_SPAN_DAYS = 64  # the longest run of days kept ORed together (EventSpan)


class EventSpan(TenantBase):
    """The roll-ups of an aligned run of 2, 4, … 64 days (`days`, from `first_day`, a
    multiple of `days` days after 1970-01-01) ORed together: the same shape as a day's.
    Worked out the first time a dashboard's range holds the run and kept until an event
    lands in it (portal/analytics/queries.py). A kept run always has its every-event row
    of block 0. Derived data: moved with the tenant, not exported."""

    __tablename__ = "event_spans"
    __table_args__ = (Index("ix_event_spans_tenant_first_day", "tenant_id", "first_day"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)  # first_day|days|chunk|name
    first_day: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(80))
    chunk: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(BigInteger)
    users: Mapped[str] = mapped_column(BIT(ROLLUP_CHUNK_BITS))


MAU_DAYS = 30  # the widest active-users window: an event counts in the 30 days from its own


class EventActiveDay(TenantBase):
    """One UTC day's events and active users (that day, its 7 days and its 30 days), worked
    out from the every-event roll-ups the first time a dashboard shows the day and kept
    until an event lands in the 30 days it counts (portal/analytics/queries.py). Derived
    data: moved with the tenant, not exported (an import works it out again)."""

    __tablename__ = "event_active_days"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)
    dau: Mapped[int] = mapped_column(Integer)
    wau: Mapped[int] = mapped_column(Integer)
    mau: Mapped[int] = mapped_column(Integer)


class TenantSession(TenantBase):
    """A signed-in browser of a tenant user: the cookie holds a random secret, this row its
    SHA-256. No row, no session (portal/auth/sessions.py)."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_tenant_user", "tenant_id", "user_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The tenant's sign-in lifetime (its setting session_minutes), or the impersonation's end.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ip: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    # Set when a staff member signed in through an impersonation handoff.
    impersonation_id: Mapped[Optional[uuid.UUID]] = mapped_column(UUID(as_uuid=True), nullable=True)


# What dashboards keep: derived from the roll-ups and worked out again when missing, so
# moved with the tenant but neither exported nor counted as its storage.
KEPT_TABLES = [EventSpan.__table__, EventActiveDay.__table__]
TENANT_TABLES = [TenantUser.__table__, TenantRole.__table__, Order.__table__, TenantSetting.__table__,
                 ApiToken.__table__, Event.__table__, EventUser.__table__, EventRollup.__table__,
                 EventSpan.__table__, EventActiveDay.__table__, TenantSession.__table__]


def row_key(table):
    """The column besides tenant_id that keys tenant table `table`'s rows (every one has
    exactly one)."""
    (column,) = [c.name for c in table.primary_key.columns if c.name != "tenant_id"]
    return column
