"""The tenant registry: the staff console's list, detail and changes of tenants."""
from portal.tenants.routes import bp

__all__ = ["bp"]
