"""API tokens: tenant admins make and revoke them; the API checks them."""
from portal.tokens.routes import bp

__all__ = ["bp"]
