"""What each staff role may do: the one table the console's guard consults.

| permission       | superadmin | operator | support | viewer |
|------------------|:----------:|:--------:|:-------:|:------:|
| tenants.view     | yes        | yes      | yes     | yes    |
| tenants.create   | yes        | yes      |         |        |
| tenants.update   | yes        | yes      |         |        |
| tenants.suspend  | yes        | yes      |         |        |
| audit.view       | yes        | yes      | yes     | yes    |
| placements.view  | yes        | yes      |         | yes    |
| placements.manage| yes        |          |         |        |
| tenants.upgrade  | yes        | yes      |         |        |
| tenants.export   | yes        | yes      |         |        |
| tenants.delete   | yes        | yes      |         |        |
| plans.manage     | yes        |          |         |        |
| staff.manage     | yes        |          |         |        |
| outbox.view      | yes        | yes      | yes     |        |
| outbox.read      | yes        |          |         |        |
| tenants.impersonate | yes     |          | yes     |        |
| tenants.analytics | yes       | yes      | yes     |        |
| account.self     | yes        | yes      | yes     | yes    |
"""

PERMISSIONS = {
    "tenants.view": {"superadmin", "operator", "support", "viewer"},
    "tenants.create": {"superadmin", "operator"},
    "tenants.update": {"superadmin", "operator"},
    "tenants.suspend": {"superadmin", "operator"},
    "audit.view": {"superadmin", "operator", "support", "viewer"},
    "placements.view": {"superadmin", "operator", "viewer"},
    "placements.manage": {"superadmin"},
    "tenants.upgrade": {"superadmin", "operator"},
    "tenants.export": {"superadmin", "operator"},
    "tenants.delete": {"superadmin", "operator"},
    "plans.manage": {"superadmin"},
    "staff.manage": {"superadmin"},
    "outbox.view": {"superadmin", "operator", "support"},
    # A kept message's body may hold a live set-password link: a way into an account
    # that skips consent and impersonation's audit. Only superadmins open one, audited.
    "outbox.read": {"superadmin"},
    "tenants.impersonate": {"superadmin", "support"},
    # A tenant's own dashboard (its events), read by staff: audited like any read of its data.
    "tenants.analytics": {"superadmin", "operator", "support"},
    # One's own account: one's sessions, ended one by one or everywhere.
    "account.self": {"superadmin", "operator", "support", "viewer"},
}


def role_may(role, permission):
    return role in PERMISSIONS.get(permission, ())
