"""Quotas and rate limits: enforced on every tenant request, shown to tenant admins
(usage) and to staff (pressure across tenants, top consumers)."""
from portal.quotas.routes import bp, staff_bp

__all__ = ["bp", "staff_bp"]
