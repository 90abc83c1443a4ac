"""Support impersonation: the staff face (start one, list them) and the tenant face (the
handoff, the banner's End)."""
from portal.support.routes import bp, staff_bp

__all__ = ["bp", "staff_bp"]
