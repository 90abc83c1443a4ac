"""Who is signed in, per realm.

A realm is the staff console or one tenant. Each realm has its own session cookie
(name, path and signing salt), and the user loader accepts an id only in its own
realm: a session made on tenant A is anonymous on tenant B and in the console.
"""
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from flask import request, session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from portal.auth.staff_roles import role_may
from portal.auth.tenant_roles import role_grant
from portal.extensions import db
from portal.models import Impersonation, StaffUser
from portal.services import sessions, tenant_settings
from portal.tenancy.context import get_current_tenant
from portal.tenancy.placement import tenant_session


@dataclass(frozen=True)
class ImpersonationView:
    """An open impersonation, as the pages need it: the banner, the read-only check and
    the audit of each request (portal/support/)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    staff_id: uuid.UUID
    staff_email: str
    staff_role: str
    user_id: uuid.UUID
    user_email: str
    expires_at: datetime
    write_allowed: bool

    @classmethod
    def of(cls, row, staff_role):
        return cls(id=row.id, tenant_id=row.tenant_id, staff_id=row.staff_user_id, staff_email=row.staff_email,
                   staff_role=staff_role, user_id=row.user_id, user_email=row.user_email, expires_at=row.expires_at,
                   write_allowed=row.write_reason is not None)

    @property
    def minutes_left(self):
        seconds = (self.expires_at - datetime.now(timezone.utc)).total_seconds()
        return max(0, math.ceil(seconds / 60))

    @property
    def actor(self):
        """The audit actor of what is done through this impersonation: the staff member."""
        return "staff", str(self.staff_id), self.staff_email


@dataclass(frozen=True)
class TenantPrincipal:
    """A signed-in tenant user: what the pages need, detached from any session."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    name: str
    role: str
    role_name: str = ""
    permissions: frozenset = frozenset()
    # Set while a staff member looks through this user's eyes (portal/support/).
    impersonation: Optional[ImpersonationView] = None

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False

    @classmethod
    def of(cls, user, session, impersonation=None):
        """The principal of `user`, with its role's permissions read through `session`."""
        role_name, permissions = role_grant(session, user.role)
        return cls(id=user.id, tenant_id=user.tenant_id, email=user.email, name=user.name, role=user.role,
                   role_name=role_name, permissions=permissions, impersonation=impersonation)

    def may(self, permission):
        return permission in self.permissions

    def get_id(self):
        return f"tenant:{self.tenant_id}:{self.id}"


def load_user(user_id):
    """The principal of this request's cookie in its realm, while its session lives on the
    server (portal/services/sessions.py); else None (anonymous)."""
    tenant = get_current_tenant()
    kind, _, rest = user_id.partition(":")
    try:
        if kind == "staff" and tenant is None:
            return sessions.staff_user(uuid.UUID(rest))
        if kind == "tenant" and tenant is not None:
            tenant_id, _, local_id = rest.partition(":")
            if uuid.UUID(tenant_id) != tenant.id or session.get("epoch") != tenant.session_epoch:
                return None
            impersonation = None
            if "impersonation" in session:
                impersonation = _open_impersonation(session["impersonation"], tenant.id, uuid.UUID(local_id))
                if impersonation is None:  # ended, expired, or not this user's: the session is over
                    return None
            with tenant_session(tenant) as data:
                # the layout's settings in the same statement as the user: a round trip less
                user = sessions.tenant_user(data, uuid.UUID(local_id), tenant_settings.as_column())
                if user is None or not user.is_active:
                    return None
                tenant_settings.prime(user)
                return TenantPrincipal.of(user, data, impersonation=impersonation)
    except ValueError:
        return None
    return None


def _open_impersonation(raw_id, tenant_id, user_id):
    """The impersonation `raw_id` if it is open, unexpired, and of this tenant and user.
    One query: the impersonation and its staff member together.
    (Closing a lapsed one, with its audit event, is portal/support/impersonation.py's job.)"""
    found = db.session.execute(
        select(Impersonation, StaffUser).join(StaffUser, StaffUser.id == Impersonation.staff_user_id)
        .where(Impersonation.id == uuid.UUID(str(raw_id)), Impersonation.tenant_id == tenant_id,
               Impersonation.user_id == user_id)
    ).first()
    return impersonation_view(*found) if found is not None else None


def impersonation_view(row, staff):
    """The view of impersonation `row` if it is open, unexpired, and its staff member is
    still active and may impersonate; else None."""
    if row.ended_at is not None or row.expires_at <= datetime.now(timezone.utc):
        return None
    if staff is None or not staff.is_active or not role_may(staff.role, "tenants.impersonate"):
        return None
    return ImpersonationView.of(row, staff.role)


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
