"""The machine API under /api/v1/: a tenant's orders, users and analytics events, for
tenant-bound API tokens (portal/tokens/) with scopes; /status answers without one."""
from portal.api.routes import bp

__all__ = ["bp"]
