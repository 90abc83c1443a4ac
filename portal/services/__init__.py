"""Cross-cutting services: audit, passwords, sign-in throttling, the Redis key space."""
