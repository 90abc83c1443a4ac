"""A tenant's own custom domains: added by its admins, verified by a DNS TXT record."""
from portal.domains.routes import bp

__all__ = ["bp"]
