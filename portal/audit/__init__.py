"""The audit log as staff read it (filter by tenant, actor, action), and as a tenant's
admins read their own."""
from portal.audit.routes import bp, staff_bp

__all__ = ["bp", "staff_bp"]
