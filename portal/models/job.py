import uuid
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import Boolean, DateTime, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

JOB_STATES = ("queued", "running", "succeeded", "failed", "interrupted", "cancelled")


class Job(db.Model):
    """Long work on a tenant, run by a worker; its steps and progress are shown live."""

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(32))
    tenant_id: Mapped[Optional[uuid.UUID]] = mapped_column(UUID(as_uuid=True), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # [{"name": ..., "state": "pending|running|done|failed|undone|skipped"}]
    steps: Mapped[list] = mapped_column(JSONB, default=list)
    percent: Mapped[int] = mapped_column(Integer, default=0)
    log: Mapped[list] = mapped_column(JSONB, default=list)
    params: Mapped[dict] = mapped_column(JSONB, default=dict)
    result: Mapped[dict] = mapped_column(JSONB, default=dict)
    error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(254))
    # Set by Python at insert, not by now(): now() is the transaction's start, so jobs made
    # in one transaction (a deprovision and its purge) would tie and "latest" would guess.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 default=lambda: datetime.now(timezone.utc))
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    # Staff asked it to stop (portal/lifecycle/cancelling.py): a queued one is not run, a
    # running export stops between tables and undoes what it wrote.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def finished(self):
        return self.state in ("succeeded", "failed", "interrupted", "cancelled")
