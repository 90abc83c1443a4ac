"""Blueprint-level guards: every staff and tenant route passes one, none is forgotten.

A staff blueprint declares, per endpoint, the permission it needs; an endpoint it
does not declare is refused (fail closed). Who holds which permission is the table in
`portal/auth/staff_roles.py`.
"""
from urllib.parse import unquote, urlsplit

from flask import abort, redirect, request, url_for
from flask_login import current_user

from portal.auth.staff_roles import role_may
from portal.errors import feature_refusal, permission_refusal
from portal.services import entitlements
from portal.tenancy.context import get_current_tenant

PUBLIC = "public"  # an endpoint anyone may reach (sign-in pages)
SIGNED_IN = "signed-in"  # any signed-in user of the tenant


def guard_staff_blueprint(bp, permissions):
    """Staff console: no tenant bound, a signed-in staff user holding the permission."""

    @bp.before_request
    def _staff_guard():
        if get_current_tenant() is not None:
            abort(404)
        permission = permissions.get(request.endpoint.rsplit(".", 1)[-1])
        if permission is None:
            abort(404)
        if permission == PUBLIC:
            return None
        if not current_user.is_authenticated or not getattr(current_user, "is_staff", False):
            return redirect(url_for("auth.staff_login", next=request.full_path.rstrip("?")))
        if not role_may(current_user.role, permission):
            return permission_refusal(current_user.role, permission)
        return None

    bp.staff_permissions = permissions


def guard_tenant_blueprint(bp, permissions, without_tenant=None):
    """A tenant's pages: a tenant bound, a signed-in user of that tenant, holding the
    permission the endpoint declares (see portal/auth/tenant_roles.py).

    `without_tenant` maps an endpoint to the view that answers its URL when no tenant is
    bound (`/` is a tenant's home, and the portal's landing page on the bare host); any
    other endpoint without a tenant is not found.

    `permissions` maps endpoints to PUBLIC, SIGNED_IN (any user of the tenant) or a
    permission such as "orders.view", or to (permission, feature) for a page that also
    needs a feature of the tenant's plan: without it, a page says which plans have it.
    An endpoint not in the map is not found (fail closed).
    """

    @bp.before_request
    def _tenant_guard():
        if get_current_tenant() is None:
            answer = (without_tenant or {}).get(request.endpoint.rsplit(".", 1)[-1])
            if answer is None:
                abort(404)
            return answer()
        need = permissions.get(request.endpoint.rsplit(".", 1)[-1])
        if need is None:
            abort(404)
        need, feature = need if isinstance(need, tuple) else (need, None)
        if need == PUBLIC:
            return None
        if not current_user.is_authenticated or getattr(current_user, "is_staff", True):
            return redirect(url_for("auth.tenant_login", next=request.full_path.rstrip("?")))
        if need != SIGNED_IN and not current_user.may(need):
            return permission_refusal(current_user.role_name, need)
        if feature is not None:
            if not entitlements.current().has(feature):
                return feature_refusal(feature)
        return None

    bp.tenant_permissions = permissions


def safe_next(target, fallback):
    """`target` if it is a path on this site, else `fallback`.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so
    "/\t/evil.example" and "/\\evil.example" are "//evil.example": another site. The check
    runs on the value and on its percent-decoded form; anything doubtful — a control or
    space character, a backslash, a scheme or host, a path starting "//" — is refused.
    """
    if not target or len(target) > 2048:
        return fallback
    for candidate in (target, unquote(target)):
        if any(ch in _DOUBTFUL for ch in candidate) or not candidate.isprintable():
            return fallback
        if not candidate.startswith("/") or candidate.startswith("//"):
            return fallback
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return fallback
    return target


_DOUBTFUL = frozenset(" \\\t\n\r\x0b\x0c")
