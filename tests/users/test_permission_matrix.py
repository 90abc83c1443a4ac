"""The permission matrix, walked: every tenant route against every permission, for the
built-in roles and for custom roles that hold exactly one permission or all but one."""
import uuid

import pytest
from sqlalchemy import update

from portal.auth.guards import PUBLIC, SIGNED_IN
from portal.auth.tenant_roles import BUILTIN_ROLES, PERMISSIONS
from portal.services.entitlements import FEATURES
from portal.tenancy.data import TenantRole, TenantUser
from portal.tenancy.placement import tenant_transaction
from tests.factories import sign_in_tenant
from tests.routes import TENANT_BLUEPRINTS, fill, rules


def _declared(app):
    """(rule, permission) for every tenant route."""
    for rule in rules(app, TENANT_BLUEPRINTS):
        blueprint, endpoint = rule.endpoint.split(".")
        need = app.blueprints[blueprint].tenant_permissions.get(endpoint)
        permission, feature = need if isinstance(need, tuple) else (need, None)
        yield rule, permission, feature


def test_every_tenant_route_declares_a_permission_of_the_matrix(app):
    declared = list(_declared(app))
    assert len(declared) > 20
    for rule, permission, feature in declared:
        assert permission in PERMISSIONS or permission in (PUBLIC, SIGNED_IN), rule.endpoint
        assert feature is None or feature in FEATURES, rule.endpoint


@pytest.fixture()
def walker(app, client, factory):
    """A signed-in user of an enterprise tenant (every feature) whose role a test sets
    between requests; `visit(rule)` answers the status of the route."""
    tenant = factory.tenant(plan="enterprise")
    me = factory.user(tenant, role="admin")
    other = factory.user(tenant, role="member")
    sign_in_tenant(client, tenant, me)
    ids = {"user_id": other.id, "order_id": uuid.uuid4(), "job_id": uuid.uuid4(), "token_id": uuid.uuid4(),
           "key": "no-such-role", "action": "disable"}

    def set_role(role_key, permissions=None):
        with tenant_transaction(tenant) as session:
            if permissions is not None:
                session.merge(TenantRole(tenant_id=tenant.id, key=role_key, name=role_key,
                                         permissions=sorted(permissions)))
            session.execute(update(TenantUser).where(TenantUser.id == me.id).values(role=role_key))

    def visit(rule):
        method = "GET" if "GET" in rule.methods else "POST"
        return client.open(f"/t/{tenant.slug}{fill(rule, ids)}", method=method, data={}).status_code

    app.config["WTF_CSRF_ENABLED"] = False  # the guard answers before any form is read
    yield set_role, visit
    app.config["WTF_CSRF_ENABLED"] = True


PAST_THE_GUARD = (200, 302, 400, 404)  # the page, a redirect, a form error, or no such object


def test_custom_roles_holding_one_permission_or_all_but_one(app, walker):
    set_role, visit = walker
    checked = 0
    for rule, permission, _feature in _declared(app):
        if permission not in PERMISSIONS:
            continue
        set_role(f"only-{permission.replace('.', '-')}", {permission})
        assert visit(rule) in PAST_THE_GUARD, (rule.rule, permission, "held")
        set_role(f"but-{permission.replace('.', '-')}", set(PERMISSIONS) - {permission})
        assert visit(rule) == 403, (rule.rule, permission, "lacked")
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("role", sorted(BUILTIN_ROLES))
def test_builtin_roles_per_route(app, walker, role):
    set_role, visit = walker
    set_role(role)
    for rule, permission, _feature in _declared(app):
        if permission == PUBLIC:
            continue
        status = visit(rule)
        if permission == SIGNED_IN or permission in BUILTIN_ROLES[role]:
            assert status in PAST_THE_GUARD, (role, rule.rule, status)
        else:
            assert status == 403, (role, rule.rule, status)
