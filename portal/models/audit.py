import uuid
from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db


class AuditEvent(db.Model):
    """Append-only: the application role may INSERT and SELECT, never UPDATE or DELETE."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_tenant_at", "tenant_id", "occurred_at"),
        Index("ix_audit_events_actor_at", "actor_label", "occurred_at"),
        Index("ix_audit_events_action_at", "action", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_kind: Mapped[str] = mapped_column(String(16))  # staff | tenant_user | system
    actor_id: Mapped[Optional[str]] = mapped_column(String(80), nullable=True)
    actor_label: Mapped[str] = mapped_column(String(254))
    tenant_id: Mapped[Optional[uuid.UUID]] = mapped_column(UUID(as_uuid=True), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[Optional[str]] = mapped_column(String(254), nullable=True)
    reason: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    details: Mapped[dict] = mapped_column(JSONB, default=dict)
    ip: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
