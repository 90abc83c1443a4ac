"""A tenant's orders: the pages (list, one order, new, edit, delete), with the rules the
API keeps too (services.py)."""
from portal.orders.routes import bp

__all__ = ["bp"]
