"""The mail outbox: what the portal sent, or would have sent with no SMTP server."""
from portal.outbox.routes import bp

__all__ = ["bp"]
