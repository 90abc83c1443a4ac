"""Cross-cutting services, used by feature packages and lifecycle alike: audit events,
sessions, passwords and set-password links, sign-in throttling, entitlements, rate limits
and metering, jobs, mail, tenant settings, the Redis key space, lookups by outside ids
(rows.py) and the refusals they raise (errors.py)."""
