from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.auth.services import open_set_password_link
from portal.extensions import db
from portal.services.errors import Refused
from portal.services.validation import normalise_email
from portal.models import Plan
from portal.services import audit, entitlements
from portal.tenancy.context import require_tenant
from portal.roles.services import check_assignable, check_may_take
from portal.tenancy.data import TenantUser
from portal.tenancy.placement import get_row, tenant_session, tenant_transaction


def list_users():
    with tenant_session() as session:
        return session.execute(select(TenantUser).order_by(TenantUser.email)).scalars().all()


def get_user(user_id):
    with tenant_session() as session:
        return get_row(session, TenantUser, user_id)


def count_users(session):
    return session.execute(select(func.count()).select_from(TenantUser)).scalar_one()


def add_user(email, name, role, actor):
    """Add a user to the current tenant; return (user, set-password token)."""
    tenant = require_tenant()
    email = normalise_email(email, "email")
    name = (name or "").strip()
    if len(name) > 120:
        raise Refused("A name is at most 120 characters.", "name")
    plan = db.session.get(Plan, tenant.plan_code)
    max_users = entitlements.for_tenant(tenant.id, tenant.plan_code).limit("max_users")
    try:
        with tenant_transaction() as session:
            check_assignable(session, actor, role)
            if session.execute(select(TenantUser.id).where(TenantUser.email == email)).first():
                raise Refused(f"{email} is already a user of this tenant.", "email")
            users = count_users(session)
            if max_users is not None and users >= max_users:
                raise Refused(f"The {plan.name} plan allows {max_users} users and this tenant has {users}.", "email")
            user = TenantUser(tenant_id=tenant.id, email=email, name=name, role=role)
            token = open_set_password_link(user)
            session.add(user)
    except IntegrityError:
        raise Refused(f"{email} is already a user of this tenant.", "email") from None
    audit.record("tenant_user.added", actor=actor, tenant_id=tenant.id, target=email, details={"role": role})
    db.session.commit()
    return user, token


def _other_active_admins(session, user):
    return session.execute(select(func.count()).select_from(TenantUser).where(
        TenantUser.role == "admin", TenantUser.is_active.is_(True), TenantUser.id != user.id)).scalar_one()


def change_user(user_id, action, actor, role=None):
    """disable, enable, remove, reset the password of, or give `role` to a user of the
    current tenant. Refused: acting on yourself, leaving the tenant without an active
    admin, or a role the actor could not grant. Returns (user email, set-password token
    for a reset, else None)."""
    tenant = require_tenant()
    token = details = None
    with tenant_transaction() as session:
        user = get_row(session, TenantUser, user_id)
        if user is None:
            raise LookupError(user_id)
        if user.id == actor.id:
            raise Refused("You cannot do that to your own account.")
        leaves_admins = action in ("disable", "remove") or (action == "role" and role != "admin")
        if leaves_admins and user.role == "admin" and user.is_active and not _other_active_admins(session, user):
            raise Refused("This is the tenant's last active admin: make another admin first.")
        email = user.email
        if action == "disable":
            user.is_active = False
        elif action == "enable":
            user.is_active = True
        elif action == "remove":
            session.delete(user)
        elif action == "role":
            check_assignable(session, actor, role)
            check_may_take(session, actor, user.role)
            details = {"from": user.role, "to": role}
            user.role = role
        elif action == "reset":
            # The old password stops working at once; the new link sets another.
            user.password_hash = None
            token = open_set_password_link(user)
        else:
            raise LookupError(action)
    audit.record(f"tenant_user.{action}", actor=actor, tenant_id=tenant.id, target=email,
                 details=details)
    db.session.commit()
    return email, token
