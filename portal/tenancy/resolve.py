"""WSGI middleware: find the request's tenant, or answer by itself.

Order: the path prefix `/t/<slug>/` (moved into SCRIPT_NAME, so `url_for` keeps it),
a custom domain, a subdomain of PORTAL_BASE_DOMAIN, and on `/api/` paths only the
`X-Tenant-ID` header (which must agree with a tenant named another way). A request
for an unknown tenant gets 404, a suspended one 403, one being set up 503 (with
Retry-After), a closed one (deprovisioning, archived, purged) 410: HTML pages, or JSON on
`/api/`. Admin hosts (the base domain, `admin.`/`www.` under it, and
PORTAL_ADMIN_HOSTS) carry no tenant: they serve the staff console.

Static files (`/static/…`, under a tenant's prefix too) are the same for everyone and are
never refused: not for a tenant's state (suspended, closed, being set up), nor for its
rate limit (the gates), nor for an unknown tenant or host — so every refusal page keeps
its stylesheet. (Nor are they counted: portal/quotas/limits.py.)

The operations endpoints (`/healthz`, `/readyz`, `/metrics`, exactly these paths) pass
untouched, on any host, Host header or none: a load balancer or Prometheus asks by
address, and they answer for the process, never for a tenant.
"""
import re
import uuid

from portal.answers import is_api_path, wsgi_refusal
from portal.tenancy.context import current_tenant
from portal.tenancy.lookup import published_version
from portal.tenancy.slugs import is_valid_slug

_PREFIX = re.compile(r"^/t/([^/]+)(/.*)?$")
STATIC_PREFIX = "/static/"
OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_TENANTLESS_LABELS = ("admin", "www")
_STATUS_ANSWERS = {
    "provisioning": (503, "Being set up", "This tenant is being set up; try again in a minute."),
    "failed": (404, "Tenant not found", "There is no tenant at this address."),
    "suspended": (403, "Tenant suspended", "This tenant is suspended."),
    "deprovisioning": (410, "Tenant closed", "This tenant has been closed."),
    "archived": (410, "Tenant closed", "This tenant has been closed."),
    "purged": (410, "Tenant closed", "This tenant has been closed."),
}

_REFUSAL_REASONS = {"suspended": "suspension", "provisioning": "provisioning", "deprovisioning": "closed",
                    "archived": "closed", "purged": "closed"}


def status_refusal(tenant):
    """The Refusal a tenant's state calls for (suspended 403, closed 410, being set up
    503, ...), or None while it serves: here, and after a request reloads the tenant."""
    if tenant.status not in _STATUS_ANSWERS:
        return None
    status, title, message = _STATUS_ANSWERS[tenant.status]
    detail = tenant.status_reason if tenant.status == "suspended" else None
    return Refusal(status, title, message, detail=detail, reason=_REFUSAL_REASONS.get(tenant.status))


class Refusal(Exception):
    def __init__(self, status, title, message, detail=None, reason=None):
        super().__init__(message)
        self.status, self.title, self.message, self.detail = status, title, message, detail
        self.reason = reason  # for portal_refusals_total (portal/metrics.py): a tenant's state


class TenantResolver:
    def __init__(self, app, wsgi_app, lookup, gates=()):
        self.app = app
        self.wsgi_app = wsgi_app
        self.lookup = lookup
        self.base_domain = app.config["PORTAL_BASE_DOMAIN"].lower()
        self.admin_hosts = app.config["ADMIN_HOSTS"]
        # Checks that may answer for a resolved tenant before the app runs at all (a
        # tenant already over its requests a minute): (app, tenant, environ,
        # start_response) -> a WSGI answer, or None to go on.
        self.gates = list(gates)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") in OPERATIONS_PATHS:
            environ["portal.tenant"] = None
            return self.wsgi_app(environ, start_response)
        try:
            with self.app.app_context():
                tenant = self.resolve(environ)
        except Refusal as refusal:
            if refusal.status != 400 and _static_path(environ):  # the refusal page's own stylesheet
                environ["portal.tenant"] = None
                return self.wsgi_app(environ, start_response)
            return self._refuse(environ, start_response, refusal)
        environ["portal.tenant"] = tenant
        static = environ.get("PATH_INFO", "").startswith(STATIC_PREFIX)
        for gate in self.gates if tenant is not None and not static else ():
            answered = gate(self.app, tenant, environ, start_response)
            if answered is not None:
                return answered
        token = current_tenant.set(tenant)
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            current_tenant.reset(token)

    # -- resolution ---------------------------------------------------------------
    def resolve(self, environ):
        path = environ.get("PATH_INFO", "") or "/"
        is_api = is_api_path(path)
        header = environ.get("HTTP_X_TENANT_ID")
        if header is not None and not is_api:
            raise Refusal(400, "Bad request", "The X-Tenant-ID header is accepted on /api/ paths only.")

        host = _host(environ)
        tenant = None
        match = _PREFIX.match(path)
        if match:
            tenant = self._by_slug(match.group(1))
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + f"/t/{match.group(1)}"
            environ["PATH_INFO"] = match.group(2) or "/"
        if tenant is None:
            tenant = self._by_host(host)
        elif not self._serves_prefix(host, tenant):
            raise Refusal(404, "Unknown host", f"No tenant is served at {host}.")

        by_address = tenant is not None
        if header is not None:
            named = self._by_slug_or_id(header.strip())
            if tenant is not None and named.id != tenant.id:
                raise Refusal(400, "Bad request", "X-Tenant-ID does not match the tenant of this address.")
            tenant = named
        if is_api:
            tenant = self._agree_with_token(environ, tenant, by_address)
        if tenant is not None and not environ["PATH_INFO"].startswith(STATIC_PREFIX):
            tenant = self._check_status(tenant)  # a refusal page keeps its stylesheet
        return tenant

    def _agree_with_token(self, environ, tenant, by_address):
        """An API token names its tenant: a request naming no tenant goes to it; one
        naming another tenant by its address is not found there (404), one naming it only
        by X-Tenant-ID is refused (403). The token's secret is checked by the API."""
        claimed = token_tenant_id(environ.get("HTTP_AUTHORIZATION", ""))
        if claimed is None:
            return tenant
        if tenant is None:
            found = self.lookup.by_id(claimed)
            if found is None:
                raise Refusal(404, "Not found", "There is nothing at this address.")
            return found
        if tenant.id != claimed:
            if by_address:
                raise Refusal(404, "Not found", "There is nothing at this address.")
            raise Refusal(403, "Forbidden", "This token is not valid for the tenant named in X-Tenant-ID.")
        return tenant

    def _label(self, host):
        """The host's label under the base domain ('' for an admin host, which carries no
        tenant: the base domain, admin./www. under it, PORTAL_ADMIN_HOSTS); None for a
        host outside the base domain."""
        if host in self.admin_hosts or host == self.base_domain:
            return ""
        suffix = "." + self.base_domain
        if not host.endswith(suffix):
            return None
        label = host[: -len(suffix)]
        return "" if label in _TENANTLESS_LABELS else label

    def _by_host(self, host):
        label = self._label(host)
        if label == "":
            return None
        if label is not None:
            if "." in label:
                raise Refusal(404, "Unknown host", f"No tenant is served at {host}.")
            return self._by_slug(label)
        tenant = self.lookup.by_domain(host)
        if tenant is None:
            raise Refusal(404, "Unknown host", f"No tenant is served at {host}.")
        return tenant

    def _serves_prefix(self, host, tenant):
        """A path-prefixed request must come to an admin host or to the tenant's own
        subdomain: never to another tenant's host (its cookie would land on a stranger's
        origin) nor to a custom domain."""
        return self._label(host) in ("", tenant.slug)

    def _by_slug(self, slug):
        tenant = self.lookup.by_slug(slug) if is_valid_slug(slug) else None
        if tenant is None:
            raise Refusal(404, "Tenant not found", "There is no tenant at this address.")
        return tenant

    def _by_slug_or_id(self, value):
        """X-Tenant-ID names a tenant by its id or its slug."""
        try:
            tenant_id = uuid.UUID(value)
        except ValueError:
            return self._by_slug(value)
        tenant = self.lookup.by_id(tenant_id)
        if tenant is None:
            raise Refusal(404, "Tenant not found", "There is no tenant at this address.")
        return tenant

    def _check_status(self, tenant):
        """The tenant, if its state lets it serve; else its Refusal. A cached ref that would
        refuse is read again first if its registry version is not the published one (it
        was resumed, maybe on another node): the limits step does the same for a ref that
        serves, with the version its rate-limit count brings."""
        if tenant.status in _STATUS_ANSWERS and published_version(tenant.id) != tenant.registry_version:
            tenant = self.lookup.reload(tenant.id, tenant.slug) or tenant
        if tenant.status in _STATUS_ANSWERS:
            # (raised as made, never kept in a local: a frame holding its own exception is
            # a cycle that keeps the request's environ, and its answer's accounting, alive)
            raise status_refusal(tenant)
        return tenant

    # -- answering ----------------------------------------------------------------
    def _refuse(self, environ, start_response, refusal):
        if refusal.reason:
            environ["portal.refusal"] = refusal.reason
        try:
            _host(environ)
        except Refusal:  # the page's links are built for a host: not the one refused
            environ = {**environ, "HTTP_HOST": self.base_domain}
        headers = {"Retry-After": 30} if refusal.status == 503 else None
        return wsgi_refusal(self.app, environ, start_response, refusal.status, refusal.title, refusal.message,
                            headers=headers, detail=refusal.detail)


# An API token: `tp_<tenant id hex>_<secret>` (made and checked in portal/tokens/).
API_TOKEN = re.compile(r"^tp_([0-9a-f]{32})_([A-Za-z0-9_-]{20,})$")


def token_tenant_id(authorization):
    """The tenant id an API token in an Authorization header claims, unchecked."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    match = API_TOKEN.match(token.strip()) if scheme == "Bearer" else None
    return uuid.UUID(match.group(1)) if match else None


def _static_path(environ):
    """Whether the request is for a static file, once any `/t/<slug>/` prefix is moved into
    SCRIPT_NAME (it may be still in the path when the slug was refused)."""
    path = environ.get("PATH_INFO", "") or "/"
    match = _PREFIX.match(path)
    if match and (match.group(2) or "").startswith(STATIC_PREFIX):
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + f"/t/{match.group(1)}"
        environ["PATH_INFO"] = path = match.group(2)
    return path.startswith(STATIC_PREFIX)


_DNS_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_IPV6 = re.compile(r"^\[[0-9a-f:.]{2,45}\]$")


def _host(environ):
    """The request's host name, lower case, without port or final dot. A Host that is not a
    DNS name (labels of at most 63 letters, digits and hyphens, 253 in all) or an IP
    literal, or whose port is not a number, is refused with 400 before any lookup."""
    raw = (environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")).strip().lower()
    name, port = raw, ""
    if raw.startswith("["):
        name, _, rest = raw.partition("]")
        name += "]"
        port = rest[1:] if rest.startswith(":") else rest
    elif ":" in raw:
        name, _, port = raw.rpartition(":")
    name = name[:-1] if name.endswith(".") else name
    valid = (_IPV6.match(name) if name.startswith("[") else len(name) <= 253 and _DNS_NAME.match(name))
    if not valid or (port and not (port.isascii() and port.isdigit() and len(port) <= 5)):
        raise Refusal(400, "Bad request", "The Host header is not a valid host name.")
    return name
