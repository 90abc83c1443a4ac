import uuid
from datetime import datetime
from typing import Optional

from sqlalchemy import Boolean, DateTime, ForeignKey, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

STAFF_ROLES = ("superadmin", "operator", "support", "viewer")


class StaffUser(db.Model):
    __tablename__ = "staff_users"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    role: Mapped[str] = mapped_column(String(16))
    # NULL until an invited member follows their set-password link.
    password_hash: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    # The set-password link (portal/services/password_links.py), as a tenant user's: the
    # sha256 of its single-use token (unique), its expiry, and when it was used (a used
    # link is told apart from an unknown one). NULL when none was made.
    set_password_token_hash: Mapped[Optional[str]] = mapped_column(String(64), nullable=True, unique=True)
    set_password_expires_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    set_password_used_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_login_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)

    # Flask-Login protocol. The id names the realm, so that the user loader can refuse
    # a staff session on a tenant's pages (and a tenant's session in the console).
    is_authenticated = True
    is_anonymous = False
    is_staff = True

    def get_id(self):
        return f"staff:{self.id}"


class StaffSession(db.Model):
    """A signed-in browser of a staff user: the cookie holds a random secret, this row its
    SHA-256. It ends when deleted, idle too long, or past its absolute lifetime
    (portal/auth/sessions.py)."""

    __tablename__ = "staff_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ip: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
