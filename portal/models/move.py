import uuid
from datetime import datetime
from typing import Optional

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

# The states of a move, in order; a move ends `switched` (then its old copy is dropped),
# `cancelled` or `failed` (the tenant stays where it was, untouched).
MOVE_STATES = ("queued", "copying", "catching_up", "frozen", "validating", "switched", "cancelled", "failed")
UNDER_WAY = ("queued", "copying", "catching_up", "frozen", "validating")


class TenantMove(db.Model):
    """A move of one tenant to another tier or server, online (portal/lifecycle/moves.py)."""

    __tablename__ = "tenant_moves"
    __table_args__ = (
        Index("ix_tenant_moves_tenant_id_created_at", "tenant_id", "created_at"),
        Index("uq_tenant_moves_under_way", "tenant_id", unique=True,
              postgresql_where=text("state in ('queued', 'copying', 'catching_up', 'frozen', 'validating')")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    from_tier: Mapped[str] = mapped_column(String(16))
    from_placement_id: Mapped[Optional[uuid.UUID]] = mapped_column(ForeignKey("placements.id"), nullable=True)
    to_tier: Mapped[str] = mapped_column(String(16))
    to_placement_id: Mapped[Optional[uuid.UUID]] = mapped_column(ForeignKey("placements.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    job_id: Mapped[Optional[uuid.UUID]] = mapped_column(UUID(as_uuid=True), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    max_freeze_ms: Mapped[int] = mapped_column(Integer)
    # rows per table, copy seconds and rows/s, backlog, freeze ms, checksums, total seconds
    figures: Mapped[dict] = mapped_column(JSONB, default=dict)
    error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    switched_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    drop_after: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    dropped_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)

    from_placement = relationship("Placement", foreign_keys=[from_placement_id], lazy="joined")
    to_placement = relationship("Placement", foreign_keys=[to_placement_id], lazy="joined")

    @property
    def under_way(self):
        return self.state in UNDER_WAY

    @property
    def old_copy_kept(self):
        return self.state == "switched" and self.dropped_at is None
