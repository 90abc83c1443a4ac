import uuid
from datetime import datetime
from typing import Optional

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

TENANT_STATUSES = ("provisioning", "active", "suspended", "deprovisioning", "archived", "purged", "failed")
TENANT_TIERS = ("pool", "bridge", "silo")
# The statuses in which a tenant has its storage: served, measured, exported, upgraded.
WITH_STORAGE = ("active", "suspended")


class Tenant(db.Model):
    __tablename__ = "tenants"
    __table_args__ = (
        Index("ix_tenants_status_created", "status", "created_at"),
        Index("ix_tenants_plan_code", "plan_code"),
        Index("ix_tenants_lower_name", func.lower(db.column("name"))),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    tier: Mapped[str] = mapped_column(String(16), default="pool")
    plan_code: Mapped[str] = mapped_column(ForeignKey("plans.code"))
    # Silo tenants only: the server holding the tenant's database.
    placement_id: Mapped[Optional[uuid.UUID]] = mapped_column(ForeignKey("placements.id"), nullable=True)
    # The tenant history's revision applied to this tenant's tables; None until known.
    schema_version: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    # Bumped to end every session of the tenant at once.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped when a move switches the tenant to another place: every process sees it on its
    # next request (portal/services/ratelimit.py reads the published version with the count).
    placement_version: Mapped[int] = mapped_column(Integer, default=0)
    # Set while staff hold the tenant in maintenance mode: reads go on, writes are refused.
    maintenance_reason: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    failed_step: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    archived_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    purge_after: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    export_path: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    plan = relationship("Plan", lazy="joined")
    placement = relationship("Placement", lazy="joined")
    overrides = relationship("TenantOverride", lazy="selectin", viewonly=True)
    domains = relationship(
        "TenantDomain", back_populates="tenant", order_by="TenantDomain.domain", lazy="selectin"
    )


class TenantDomain(db.Model):
    """A custom domain of a tenant. It resolves to the tenant once verified: a domain
    staff record is verified by their word; one a tenant admin adds, by a DNS TXT record
    carrying its verification token.

    A row is a tenant's claim of a name: several tenants may claim one name while it is
    pending; the name is unique among verified rows only (the first claim verified wins,
    the others are dropped then), and a tenant claims a name once."""

    __tablename__ = "tenant_domains"
    __table_args__ = (
        Index("uq_tenant_domains_verified_domain", "domain", unique=True,
              postgresql_where=text("verified_at is not null")),
        Index("uq_tenant_domains_tenant_id_domain", "tenant_id", "domain", unique=True),
        Index("ix_tenant_domains_domain", "domain"),  # every claim of a name, pending ones too
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(253))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    verification_token: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    verified_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    last_checked_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    last_check_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)

    tenant = relationship("Tenant", back_populates="domains")
