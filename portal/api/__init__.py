"""The machine API under /api/v1/. Tokens come with the API-token issue; today it
answers what any caller may know: whether a tenant it names is served."""
from portal.api.routes import bp

__all__ = ["bp"]
