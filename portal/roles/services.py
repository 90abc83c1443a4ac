"""Custom roles on the permission matrix, and who may hand out which role.

A user may give (or define) only a role whose permissions they hold themselves: a
custom role with users.update cannot make anyone an admin.
"""
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.auth.tenant_roles import BUILTIN_ROLES, PERMISSIONS, permissions_of
from portal.extensions import db
from portal.services import audit_events, sessions
from portal.services.errors import NotFound, Refused
from portal.services.validation import skeleton
from portal.tenancy.context import require_tenant
from portal.tenancy.data import TenantRole, TenantUser
from portal.tenancy.placement import tenant_session, tenant_transaction


@dataclass(frozen=True)
class RoleView:
    key: str
    name: str
    permissions: frozenset
    builtin: bool
    users: int = 0


def list_roles():
    """Built-in roles first, then the tenant's own, each with how many users hold it."""
    with tenant_session() as session:
        holders = dict(session.execute(select(TenantUser.role, func.count()).group_by(TenantUser.role)).all())
        custom = session.execute(select(TenantRole).order_by(TenantRole.name)).scalars().all()
    roles = [RoleView(key, key.title(), perms, True, holders.get(key, 0)) for key, perms in BUILTIN_ROLES.items()]
    roles += [RoleView(r.key, r.name, frozenset(r.permissions), False, holders.get(r.key, 0)) for r in custom]
    return roles


def get_custom_role(key):
    """The tenant's own role `key` (built-in roles are not edited: NotFound, as for any
    key the tenant has no role of)."""
    tenant = require_tenant()
    with tenant_session() as session:
        row = session.get(TenantRole, (tenant.id, key))
    if row is None:
        raise NotFound(key)
    return RoleView(row.key, row.name, frozenset(row.permissions), False)


def role_choices():
    """(key, name) of every role a user may be given here: the built-in ones, then the tenant's."""
    with tenant_session() as session:
        custom = session.execute(select(TenantRole.key, TenantRole.name).order_by(TenantRole.name)).all()
    return [(key, key.title()) for key in BUILTIN_ROLES] + [tuple(row) for row in custom]


def check_assignable(session, actor, role_key, field="role"):
    """Refused unless the role exists in this tenant and `actor` holds all it grants."""
    if role_key not in BUILTIN_ROLES and session.get(TenantRole, (require_tenant().id, role_key)) is None:
        raise Refused("Choose one of this tenant's roles.", field)
    _check_held(actor, permissions_of(session, role_key), field)


def check_may_take(session, actor, role_key):
    """Acting on a holder of a role (taking the role, disabling, removing) needs all it
    grants, as giving it would."""
    _check_held(actor, permissions_of(session, role_key), "role")


def _check_held(actor, permissions, field):
    missing = sorted(set(permissions) - set(actor.permissions))
    if missing:
        raise Refused(f"You cannot grant what you do not hold yourself: {', '.join(missing)}.", field)


def _clean(name, permissions, actor):
    name = (name or "").strip()
    if not name:
        raise Refused("Enter a name for the role.", "name")
    if len(name) > 60:
        raise Refused("A role's name is at most 60 characters.", "name")
    if skeleton(name) in BUILTIN_ROLES:
        raise Refused(f"{skeleton(name)} is a built-in role, and “{name}” reads as it; choose another name.",
                      "name")
    if not name.isprintable():
        raise Refused("A role's name may not hold control or invisible characters.", "name")
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        raise Refused(f"Not a permission: {', '.join(unknown)}. Permissions are <resource>.<action> "
                      f"from the matrix.", "permissions")
    if not permissions:
        raise Refused("Choose at least one permission.", "permissions")
    _check_held(actor, permissions, "permissions")
    return name, sorted(set(permissions))


def new_key():
    """A custom role's key: made by us, never from its name, so that it cannot be a word the
    role pages use (/roles/new) nor lose a name's letters; the name is what people see."""
    return f"r-{secrets.token_hex(4)}"


def _check_unique(session, name, key=None):
    """Refused when another role of the tenant reads as `name` (the same skeleton)."""
    wanted = skeleton(name)
    for other_key, other_name in session.execute(select(TenantRole.key, TenantRole.name)).all():
        if other_key != key and skeleton(other_name) == wanted:
            raise Refused(f"There is already a role called {other_name}.", "name")


def create_role(name, permissions, actor):
    tenant = require_tenant()
    name, permissions = _clean(name, permissions, actor)
    key = new_key()
    try:
        with tenant_transaction() as session:
            _check_unique(session, name)
            session.add(TenantRole(tenant_id=tenant.id, key=key, name=name, permissions=permissions))
    except IntegrityError:  # the same name, made at the same moment
        raise Refused(f"There is already a role called {name}.", "name") from None
    audit_events.record("tenant_role.created", actor=actor, tenant_id=tenant.id, target=key,
                        details={"name": name, "permissions": permissions})
    db.session.commit()
    return key


def update_role(key, name, permissions, actor):
    tenant = require_tenant()
    name, permissions = _clean(name, permissions, actor)
    with tenant_transaction() as session:
        role = session.get(TenantRole, (tenant.id, key))
        if role is None:
            raise NotFound(key)
        _check_unique(session, name, key)
        # Changing a role acts on all its holders: the actor must hold what it grants now,
        # as well as what it will grant (checked above).
        _check_held(actor, role.permissions, "permissions")
        before = sorted(role.permissions)
        if set(before) - set(permissions):  # fewer rights: its holders sign in afresh
            sessions.end_tenant_user(session, select(TenantUser.id).where(TenantUser.role == key))
        role.name, role.permissions = name, permissions
    audit_events.record("tenant_role.updated", actor=actor, tenant_id=tenant.id, target=key,
                        details={"name": name, "from": before, "to": permissions})
    db.session.commit()


def delete_role(key, actor):
    tenant = require_tenant()
    with tenant_transaction() as session:
        role = session.get(TenantRole, (tenant.id, key))
        if role is None:
            raise NotFound(key)
        holders = session.execute(select(func.count()).select_from(TenantUser)
                                  .where(TenantUser.role == key)).scalar_one()
        if holders:
            raise Refused(f"{holders} user{'s' if holders != 1 else ''} hold{'' if holders != 1 else 's'} "
                          f"this role: give them another role first.")
        session.delete(role)
    audit_events.record("tenant_role.deleted", actor=actor, tenant_id=tenant.id, target=key)
    db.session.commit()
