import uuid
from datetime import datetime
from typing import Optional

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

# The valid range of each limit (inclusive), for plans and overrides alike; None
# (unlimited) is allowed for every override and, on the plan matrix, for max_users only.
# Checked where a limit is set (portal/plans/services.py), and applied again where one
# is read, so that a value stored out of range never reaches PostgreSQL or Redis.
LIMIT_RANGES = {
    "max_users": (1, 1_000_000),
    "storage_mb": (0, 10_000_000),  # 0: nothing may be written (reading goes on)
    "api_calls_per_day": (0, 1_000_000_000),
    "requests_per_minute": (1, 1_000_000),
    "db_connections": (1, 100),
    "statement_timeout_ms": (100, 3_600_000),
    "event_retention_days": (1, 3650),
}


def bounded_limit(name, value, fallback=None):
    """`value` of limit `name` as it may be used: None (unlimited) stays, a number outside
    the range is brought to its nearest end, anything else is `fallback`."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return fallback
    low, high = LIMIT_RANGES[name]
    return min(max(value, low), high)


class Plan(db.Model):
    __tablename__ = "plans"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    # NULL means unlimited.
    max_users: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    storage_mb: Mapped[int] = mapped_column(Integer)
    api_calls_per_day: Mapped[int] = mapped_column(Integer)
    features: Mapped[dict] = mapped_column(JSONB, default=dict)
    requests_per_minute: Mapped[int] = mapped_column(Integer, default=300)
    db_connections: Mapped[int] = mapped_column(Integer, default=5)
    statement_timeout_ms: Mapped[int] = mapped_column(Integer, default=5000)
    # Analytics events older than this are refused at ingest, hidden and removed.
    event_retention_days: Mapped[int] = mapped_column(Integer, default=365)
    default_tier: Mapped[str] = mapped_column(String(16), default="pool")
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_retired: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def max_users_label(self):
        return "unlimited" if self.max_users is None else str(self.max_users)


class TenantOverride(db.Model):
    """One tenant's exception to its plan: a feature on or off, a limit raised or lowered,
    optionally until a date (a trial); an expired one no longer applies."""

    __tablename__ = "tenant_overrides"
    __table_args__ = (UniqueConstraint("tenant_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[Optional[object]] = mapped_column(JSONB, nullable=True)
    expires_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def kind(self):
        """"limit" or "feature": what the key (`<kind>:<name>`) overrides."""
        return self.key.partition(":")[0]

    @property
    def name(self):
        return self.key.partition(":")[2]

    def in_force(self, now):
        return self.expires_at is None or self.expires_at > now


class PlanRequest(db.Model):
    """A tenant admin's request to change plan, for staff to approve or reject."""

    __tablename__ = "plan_requests"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    from_plan: Mapped[str] = mapped_column(String(32))
    to_plan: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(String(254))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    note: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    decided_by: Mapped[Optional[str]] = mapped_column(String(254), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
