"""Staff console: tenants whose tables are behind the tenant history, and upgrade runs."""
from portal.upgrades.routes import bp

__all__ = ["bp"]
