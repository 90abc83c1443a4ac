"""A tenant's users, as its admins manage them on the tenant's pages."""
from portal.users.routes import bp

__all__ = ["bp"]
