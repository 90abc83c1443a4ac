"""Staff console: jobs (provisioning, imports, exports, moves and drains, deprovisioning,
purges, analytics expiry) with their live progress, cancel and retry."""
from portal.jobs.routes import bp

__all__ = ["bp"]
