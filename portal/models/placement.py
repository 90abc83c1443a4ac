import uuid
from datetime import datetime
from typing import Optional

from sqlalchemy import DateTime, Integer, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db


class Placement(db.Model):
    """A PostgreSQL server that holds silo tenants' databases."""

    __tablename__ = "placements"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    # Name of the environment variable with the server's owner URL; None: the registry's.
    url_env: Mapped[Optional[str]] = mapped_column(String(128), nullable=True)
    capacity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def url_source(self):
        return f"${self.url_env}" if self.url_env else "the registry's DATABASE_URL"
