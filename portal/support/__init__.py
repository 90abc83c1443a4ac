"""Support impersonation: the staff face (start one) and the tenant face (banner, end)."""
from portal.support.routes import bp, tenant_bp

__all__ = ["bp", "tenant_bp"]
