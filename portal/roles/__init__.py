"""Roles of a tenant's users: the built-in ones and the custom roles its admins define."""
from portal.roles.routes import bp

__all__ = ["bp"]
