import uuid
from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, Integer
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db


class TenantActivityDay(db.Model):
    """A tenant's analytics events on one UTC day, kept by the ingest: the staff overview
    reads these, never a tenant's own tables (portal/analytics/overview.py)."""

    __tablename__ = "tenant_activity_days"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"),
                                                 primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)


class ActivityDay(db.Model):
    """Every tenant's analytics on one UTC day: how many tenants had an event, and how
    many events; kept by the ingest with the per-tenant rows."""

    __tablename__ = "activity_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tenants: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(BigInteger)
