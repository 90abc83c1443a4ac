"""Who is signed in, per realm.

A realm is the staff console or one tenant. Each realm has its own session cookie
(name, path and signing salt), and the user loader accepts an id only in its own
realm: a session made on tenant A is anonymous on tenant B and in the console.
"""
import time
import uuid
from dataclasses import dataclass
from typing import Optional

from flask import request, session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from portal.auth.tenant_roles import permissions_of
from portal.extensions import db
from portal.models import StaffUser
from portal.tenancy.context import get_current_tenant
from portal.tenancy.data import TenantUser
from portal.tenancy.placement import tenant_session


@dataclass(frozen=True)
class TenantPrincipal:
    """A signed-in tenant user: what the pages need, detached from any session."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    name: str
    role: str
    permissions: frozenset = frozenset()
    # Set while a staff member looks through this user's eyes (portal/support/).
    impersonation: Optional[object] = None

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False

    @classmethod
    def of(cls, user, session, impersonation=None):
        """The principal of `user`, with its role's permissions read through `session`."""
        return cls(id=user.id, tenant_id=user.tenant_id, email=user.email, name=user.name, role=user.role,
                   permissions=permissions_of(session, user.role), impersonation=impersonation)

    def may(self, permission):
        return permission in self.permissions

    def get_id(self):
        return f"tenant:{self.tenant_id}:{self.id}"


def load_user(user_id):
    tenant = get_current_tenant()
    kind, _, rest = user_id.partition(":")
    try:
        if kind == "staff" and tenant is None:
            user = db.session.get(StaffUser, uuid.UUID(rest))
            return user if user is not None and user.is_active else None
        if kind == "tenant" and tenant is not None:
            tenant_id, _, local_id = rest.partition(":")
            if uuid.UUID(tenant_id) != tenant.id or session.get("epoch") != tenant.session_epoch:
                return None
            if session.get("ends_at", 0) < time.time():  # the tenant's sign-in lifetime
                return None
            with tenant_session(tenant) as data:
                user = data.get(TenantUser, (tenant.id, uuid.UUID(local_id)))
                return TenantPrincipal.of(user, data) if user is not None and user.is_active else None
    except ValueError:
        return None
    return None


class RealmSessionInterface(SecureCookieSessionInterface):
    """One signed cookie per realm: its own name, path and salt."""

    def _realm(self):
        tenant = get_current_tenant()
        return "staff" if tenant is None else f"t{tenant.id.hex}"

    def get_cookie_name(self, app):
        return f"{app.config['SESSION_COOKIE_NAME']}_{self._realm()}"

    def get_cookie_path(self, app):
        # Under /t/<slug>/ the cookie is scoped to that prefix.
        return (request.script_root or "") + "/" if get_current_tenant() else "/"

    def get_signing_serializer(self, app):
        if not app.secret_key:
            return None
        return URLSafeTimedSerializer(
            app.secret_key,
            salt=f"portal-session:{self._realm()}",
            serializer=self.serializer,
            signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method},
        )
