"""Sign-in for staff (the console) and tenant users (a tenant's pages), kept apart."""
from portal.auth.routes import bp

__all__ = ["bp"]
