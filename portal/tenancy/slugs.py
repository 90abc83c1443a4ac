"""What a tenant slug may be: a DNS label, lower case ASCII, not a reserved word."""
import re

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
# Names the portal itself uses — hosts, routes, schemas, roles and databases — and
# PostgreSQL's own: a tenant called "registry" would read as the control plane's schema.
RESERVED_SLUGS = frozenset(
    {
        # hosts and routes
        "admin", "api", "app", "assets", "auth", "cdn", "dashboard", "docs", "help", "login", "logout",
        "mail", "portal", "public", "root", "smtp", "static", "status", "support", "system", "t", "www",
        "metrics", "healthz", "readyz", "set-password", "impersonate", "account", "staff", "console",
        # schemas, roles and databases
        "registry", "tenant-data", "tenant", "tenants", "postgres", "template0", "template1",
        "information-schema", "portal-app", "pgbouncer", "replication", "superuser",
    }
)


def slug_problem(slug):
    """The reason `slug` is not acceptable, or None when it is."""
    if not slug:
        return "Enter a slug."
    if len(slug) > 63:
        return "A slug is at most 63 characters."
    if not slug.isascii():
        return "Use only the letters a-z, digits and hyphens (no look-alike characters)."
    if slug != slug.lower():
        return "Use lower case letters only."
    if not SLUG_RE.match(slug):
        return (
            "A slug is 3 to 63 characters: a-z, 0-9 and hyphens, "
            "starting with a letter and not ending with a hyphen."
        )
    if "--" in slug:
        return "A slug may not contain two hyphens in a row."
    if slug in RESERVED_SLUGS or slug.startswith("pg-") or slug.startswith("pg_"):
        return f"“{slug}” is reserved; choose another slug."
    return None


def is_valid_slug(slug):
    return slug_problem(slug) is None
