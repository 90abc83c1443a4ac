"""What a tenant user may do: permissions, the built-in roles, and a user's permissions.

A permission is `<resource>.<action>`. The built-in roles are fixed here; a tenant's
admins define custom roles (tenant table `roles`) on the same matrix. The tenant guard
(`portal/auth/guards.py`) checks the one permission each tenant route declares.

| permission        | admin | member | viewer |
|-------------------|:-----:|:------:|:------:|
| users.view        | yes   | yes    | yes    |
| users.create / update / delete | yes | | |
| roles.view / create / update / delete | yes | | |
| orders.view       | yes   | yes    | yes    |
| orders.create / update | yes | yes |       |
| orders.delete     | yes   |        |        |
| analytics.view    | yes   | yes    | yes    |
| analytics.create (send events: API tokens with events:write) | yes | | |
| settings.view / update | yes |     |        |
| tokens.view / create / delete | yes |  |    |
| audit.view        | yes   |        |        |
| plan.view         | yes   | yes    |        |
| plan.update       | yes   |        |        |

Actions a resource has no use for (audit.delete, plan.create, ...) exist so that the
matrix is whole, and grant nothing. An API token's scopes stand for permissions (see
portal/tokens/services.py): its maker must hold them.
"""
from sqlalchemy import select

from portal.tenancy.data import TenantRole

RESOURCES = ("users", "roles", "orders", "analytics", "settings", "tokens", "audit", "plan")
ACTIONS = ("view", "create", "update", "delete")
PERMISSIONS = tuple(f"{resource}.{action}" for resource in RESOURCES for action in ACTIONS)

BUILTIN_ROLES = {
    "admin": frozenset(PERMISSIONS),
    "member": frozenset({"users.view", "orders.view", "orders.create", "orders.update", "analytics.view",
                         "plan.view"}),
    "viewer": frozenset({"users.view", "orders.view", "analytics.view"}),
}


def permissions_of(session, role_key):
    """The permissions of a role: a built-in one, or a custom role of the session's tenant
    (none when the role no longer exists)."""
    return role_grant(session, role_key)[1]


def role_grant(session, role_key):
    """(name people see, permissions) of a role: a built-in one, or a custom role of the
    session's tenant (its key and no permissions when the role no longer exists)."""
    if role_key in BUILTIN_ROLES:
        return role_key, BUILTIN_ROLES[role_key]
    row = session.execute(select(TenantRole.name, TenantRole.permissions)
                          .where(TenantRole.key == role_key)).one_or_none()
    return (row.name, frozenset(row.permissions)) if row is not None else (role_key, frozenset())
