"""A tenant's own pages: home (plan and usage) and orders."""
from portal.selfservice.routes import bp

__all__ = ["bp"]
