"""The audit log as staff read it (filter by tenant, actor, action)."""
from portal.audit.routes import bp

__all__ = ["bp"]
