"""Staff console: the PostgreSQL servers that hold silo tenants."""
from portal.placements.routes import bp

__all__ = ["bp"]
