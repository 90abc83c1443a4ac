"""Analytics: events recorded (events.py), a tenant's dashboard read from daily roll-ups
(queries.py, services.py) through the tenant-aware cache, and the overview across
tenants for staff (overview.py)."""
from portal.analytics import retention  # noqa: F401 - registers the daily 'expire events' job
from portal.analytics.routes import bp, staff_bp

__all__ = ["bp", "staff_bp"]
