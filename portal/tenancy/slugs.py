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


SLUG_LENGTH = (3, 63)  # a DNS label, as SLUG_RE says
SLUG_RULE = (f"Use {SLUG_LENGTH[0]} to {SLUG_LENGTH[1]} characters: lower-case letters a-z, digits 0-9 and hyphens "
             "(never two in a row), starting with a letter and ending with a letter or a digit.")


def slug_problem(slug):
    """The reason `slug` is not acceptable, or None when it is: one message, which says in
    full what a slug may be whatever was wrong with it (upper case, a space, a "!", ...)."""
    if not slug:
        return "Enter a slug."
    if not slug.isascii():
        return f"Letters of other alphabets (look-alike characters) are not accepted. {SLUG_RULE}"
    if not SLUG_RE.match(slug) or "--" in slug:
        return SLUG_RULE
    if slug in RESERVED_SLUGS or slug.startswith("pg-") or slug.startswith("pg_"):
        return f"“{slug}” is reserved; choose another slug."
    return None


def is_valid_slug(slug):
    return slug_problem(slug) is None
