import uuid
from datetime import datetime
from typing import Optional

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

END_CAUSES = ("ended", "expired", "signed_out", "revoked")


class Impersonation(db.Model):
    """A support staff member looking at a tenant through one of its users' eyes:
    time-boxed, with a reason and a ticket, read-only unless write was granted."""

    __tablename__ = "impersonations"
    __table_args__ = (Index("ix_impersonations_staff_open", "staff_user_id", "ended_at"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    staff_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    staff_email: Mapped[str] = mapped_column(String(254))
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))  # a tenant user (tenant data plane)
    user_email: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(Text)
    ticket: Mapped[str] = mapped_column(String(64))
    minutes: Mapped[int] = mapped_column(Integer)
    # Write access is granted only with its own reason; NULL: read-only.
    write_reason: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    # A superadmin's second reason for going in although the tenant turned support access off.
    override_reason: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    # sha256 of the single-use token that carries the staff member onto the tenant's pages.
    handoff_hash: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    end_cause: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    request_count: Mapped[int] = mapped_column(Integer, default=0)
