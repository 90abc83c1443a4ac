"""Staff members' own account pages in the console: their sessions, ended one by one or everywhere."""
from portal.staff.routes import bp

__all__ = ["bp"]
