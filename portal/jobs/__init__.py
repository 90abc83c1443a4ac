"""Staff console: jobs (provisioning, exports, imports, deprovisioning, purges) and
their live progress."""
from portal.jobs.routes import bp

__all__ = ["bp"]
