"""Cross-cutting services, used by feature packages and lifecycle alike: audit events,
sessions, passwords, set-password links and the secrets behind them (secret_tokens.py),
sign-in throttling, entitlements, rate limits and metering, the job queue, mail, tenant
settings, the tenant-aware cache (cache.py), the Redis key space (keys.py), CSV output
(csv_export.py), paging (pagination.py), checks of user input (validation.py), lookups by
outside ids (rows.py) and the refusals they raise (errors.py)."""
