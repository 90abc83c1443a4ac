"""Plans and the feature matrix (staff), per-tenant overrides, and plan changes that
tenant admins ask for and staff approve."""
from portal.plans.routes import bp, staff_bp

__all__ = ["bp", "staff_bp"]
