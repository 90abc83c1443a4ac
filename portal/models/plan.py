from typing import Optional

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db


class Plan(db.Model):
    __tablename__ = "plans"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    # NULL means unlimited.
    max_users: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    storage_mb: Mapped[int] = mapped_column(Integer)
    api_calls_per_day: Mapped[int] = mapped_column(Integer)
    features: Mapped[dict] = mapped_column(JSONB, default=dict)
    default_tier: Mapped[str] = mapped_column(String(16), default="pool")
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_retired: Mapped[bool] = mapped_column(Boolean, default=False)

    def has_feature(self, name):
        return bool(self.features.get(name))

    @property
    def max_users_label(self):
        return "unlimited" if self.max_users is None else str(self.max_users)
