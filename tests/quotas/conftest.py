"""Helpers for the plans, quotas and rate-limit tests (issue 5)."""
import time
import uuid

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, Plan, TenantOverride
from portal.plans import services as plan_services
from portal.tenancy.data import TenantUser
from portal.tenancy.placement import tenant_session
from portal.tenants.services import get_tenant
from tests.factories import csrf_token, sign_in_staff

# The actor of service calls made by the tests. (A staff user object committed earlier
# would do too, but see test_overrides.py: set_override then autoflushes a half-made row.)
STAFF_ACTOR = ("staff", None, "quotas-test@staff.example")


@pytest.fixture()
def staff_actor():
    return STAFF_ACTOR


@pytest.fixture()
def override(staff_actor):
    """override(ref, key, value, until=None): set a tenant override through the service."""

    def set_(ref, key, value, until=None, reason="test"):
        return plan_services.set_override(get_tenant(ref.id), key, value, until, reason, staff_actor)

    return set_


@pytest.fixture()
def staff_client(client, factory):
    """sign(role) -> the test client signed in as a new staff user of `role`."""

    def sign(role="superadmin"):
        user = factory.staff(role)
        sign_in_staff(client, user)
        return user

    return sign


def fresh_minute(margin=5):
    """Wait for the next clock minute when fewer than `margin` seconds are left of this
    one, so a short run of requests falls into one rate-limit window."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


def user_count(ref):
    """Counted here, not through portal.services.metering."""
    with tenant_session(ref) as session:
        return session.execute(select(func.count()).select_from(TenantUser)).scalar_one()


def plan(code):
    db.session.expire_all()
    return db.session.get(Plan, code)


def overrides(tenant_id):
    return db.session.execute(select(TenantOverride).where(TenantOverride.tenant_id == tenant_id)).scalars().all()


def events(action, target=None, tenant_id=None):
    """This test's audit events: now() is the start of the test's transaction, and so the
    time of every event written in it (browser tests commit events of their own)."""
    query = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.occurred_at == func.now())
    if target is not None:
        query = query.where(AuditEvent.target == target)
    if tenant_id is not None:
        query = query.where(AuditEvent.tenant_id == tenant_id)
    return db.session.execute(query.order_by(AuditEvent.id)).scalars().all()


def post_form(client, page_url, action_url, data):
    """POST `data` to `action_url` with the CSRF token of `page_url`."""
    token = csrf_token(client.get(page_url).get_data(as_text=True))
    return client.post(action_url, data={**data, "csrf_token": token})


def unique_code(prefix="p"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
