"""Signing in, and set-password links for tenant users."""
import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import STAFF_ROLES, StaffUser
from portal.services import audit, throttle
from portal.services.errors import Refused
from portal.services.validation import normalise_email
from portal.services.passwords import hash_password, password_problem, verify_password
from portal.tenancy.data import TenantUser
from portal.tenancy.placement import tenant_transaction

# One message for every failure: it never tells which of email or password was wrong.
BAD_CREDENTIALS = "That email and password do not match an account."


class SignInError(Exception):
    pass


def authenticate_staff(email, password, address):
    email = email.strip().lower()
    throttle.check("staff", email, address)
    user = db.session.execute(
        select(StaffUser).where(func.lower(StaffUser.email) == email)
    ).scalar_one_or_none()
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or not user.is_active:
        throttle.failed("staff", email, address)
        raise SignInError(BAD_CREDENTIALS)
    throttle.succeeded("staff", email, address)
    user.last_login_at = datetime.now(timezone.utc)
    audit.record("staff.sign_in", actor=user, target=user.email)
    db.session.commit()
    return user


def authenticate_tenant_user(tenant, email, password, address):
    email = email.strip().lower()
    realm = f"t:{tenant.id}"
    throttle.check(realm, email, address)
    with tenant_transaction(tenant) as session:
        user = session.execute(select(TenantUser).where(TenantUser.email == email)).scalar_one_or_none()
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or not user.is_active:
        throttle.failed(realm, email, address)
        raise SignInError(BAD_CREDENTIALS)
    throttle.succeeded(realm, email, address)
    audit.record("tenant_user.sign_in", actor=user, tenant_id=tenant.id, target=user.email)
    db.session.commit()
    return user


def _token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def open_set_password_link(user):
    """Give `user` (a TenantUser in an open session) a fresh single-use token; return it."""
    token = secrets.token_urlsafe(32)
    user.set_password_token_hash = _token_hash(token)
    user.set_password_expires_at = datetime.now(timezone.utc) + timedelta(
        hours=current_app.config["SET_PASSWORD_LINK_HOURS"]
    )
    return token


def user_for_token(session, token):
    """The user whose open, unexpired set-password token this is, or None."""
    user = session.execute(
        select(TenantUser).where(TenantUser.set_password_token_hash == _token_hash(token))
    ).scalar_one_or_none()
    if user is None or user.set_password_expires_at < datetime.now(timezone.utc):
        return None
    return user


class PasswordRejected(Exception):
    pass


def set_password_with_token(tenant, token, password):
    """Use the link once: set the password and close the link. Returns the user."""
    with tenant_transaction(tenant) as session:
        user = user_for_token(session, token)
        if user is None:
            raise PasswordRejected("This link has expired or has already been used.")
        problem = password_problem(password, user.email)
        if problem:
            raise PasswordRejected(problem)
        user.password_hash = hash_password(password)
        user.set_password_token_hash = None
        user.set_password_expires_at = None
    audit.record("tenant_user.password_set", actor=user, tenant_id=tenant.id, target=user.email)
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
    audit.record("staff.created", actor=actor or ("system", None, "cli"), target=email, details={"role": role})
    db.session.commit()
    return user, password
