"""Signing in, and set-password links for tenant users."""
import secrets
from datetime import datetime, timezone

from sqlalchemy import func, select

from portal.analytics.events import track_event
from portal.auth.principals import TenantPrincipal
from portal.extensions import db
from portal.models import STAFF_ROLES, StaffUser
from portal.services import audit_events, password_links, sessions, throttle
from portal.services.errors import Refused
from portal.services.passwords import hash_password, password_problem, verify_password
from portal.services.validation import normalise_email
from portal.tenancy.data import TenantUser
from portal.tenancy.placement import tenant_session, tenant_transaction

# One message for every failure: it never tells which of email or password was wrong.
BAD_CREDENTIALS = "That email and password do not match an account."


class SignInError(Exception):
    pass


def authenticate_staff(email, password, address):
    email = email.strip().lower()
    throttle.check(None, email, address)
    user = db.session.execute(
        select(StaffUser).where(func.lower(StaffUser.email) == email)
    ).scalar_one_or_none()
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or not user.is_active:
        throttle.failed(None, email, address)
        raise SignInError(BAD_CREDENTIALS)
    throttle.succeeded(None, email, address)
    user.last_login_at = datetime.now(timezone.utc)
    audit_events.record("staff.sign_in", actor=user, target=user.email)
    db.session.commit()
    return user


def authenticate_tenant_user(tenant, email, password, address):
    email = email.strip().lower()
    realm = tenant.id
    throttle.check(realm, email, address)
    with tenant_transaction(tenant) as session:
        user = session.execute(select(TenantUser).where(TenantUser.email == email)).scalar_one_or_none()
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or not user.is_active:
        throttle.failed(realm, email, address)
        raise SignInError(BAD_CREDENTIALS)
    throttle.succeeded(realm, email, address)
    audit_events.record("tenant_user.sign_in", actor=tenant_actor(user), tenant_id=tenant.id, target=user.email)
    db.session.commit()
    track_event("signed_in", user.id, tenant=tenant)
    return user


def tenant_actor(user):
    """The audit actor of a tenant user acting before they are signed in (a TenantUser row
    is not a principal: audit_events.actor_of would name the system)."""
    return "tenant_user", str(user.id), user.email


def principal_of(tenant, user):
    """`user` of `tenant` as the pages see it once signed in: with its role's permissions."""
    with tenant_session(tenant) as session:
        return TenantPrincipal.of(user, session)


def link_state(tenant, token):
    """(user, state) of a set-password token of `tenant` (see password_links.user_for_token)."""
    with tenant_session(tenant) as session:
        return password_links.user_for_token(session, token)


class PasswordRejected(Exception):
    """A password the rules refuse; the link stays usable."""


class LinkClosed(Exception):
    """The link is unknown (state None), used or expired."""

    def __init__(self, state, user=None):
        super().__init__(state)
        self.state = state
        self.user = user


def set_password_with_token(tenant, token, password):
    """Use the link once: set the password and mark the link used. Returns the user."""
    with tenant_transaction(tenant) as session:
        # Locked: two submissions of one link cannot both set a password.
        user, state = password_links.user_for_token(session, token, for_update=True)
        if state != password_links.OPEN:
            raise LinkClosed(state, user)
        problem = password_problem(password, user.email)
        if problem:
            raise PasswordRejected(problem)
        user.password_hash = hash_password(password)
        password_links.mark_used(user)
        sessions.end_tenant_user(session, user.id)  # a new password: every earlier sign-in ends
    audit_events.record("tenant_user.password_set", actor=tenant_actor(user), tenant_id=tenant.id, target=user.email)
    db.session.commit()
    return user


def create_staff_user(email, role, password=None, name="", actor=None):
    """Create a staff user; return (user, password). A password is generated when none
    is given (shown once by the caller, stored only as its hash)."""
    email = normalise_email(email, "email")
    if role not in STAFF_ROLES:
        raise Refused(f"Role must be one of: {', '.join(STAFF_ROLES)}.", "role")
    if db.session.execute(select(StaffUser.id).where(func.lower(StaffUser.email) == email)).first():
        raise Refused(f"{email} is already a staff user.", "email")
    password = password or secrets.token_urlsafe(12)
    problem = password_problem(password, email)
    if problem:
        raise Refused(problem, "password")
    user = StaffUser(email=email, role=role, name=name, password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    audit_events.record("staff.created", actor=actor or ("system", None, "cli"), target=email, details={"role": role})
    db.session.commit()
    return user, password
