"""Provisioning as a saga (issue 4): a fault injected at every step, in every tier,
leaves only the `failed` tenant (the catalogs, the pool tables and Redis are checked);
discarding it removes it; a retry after the fault finishes the job. Transitions that are
not allowed are refused with a message naming the state."""
import os
import re
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import select, text

from portal.dbsetup import owner_connection
from portal.extensions import db
from portal.lifecycle import dispatch, provisioning, retire, states
from portal.models import AuditEvent, OutboxMessage, Tenant
from portal.services import jobqueue, tenant_settings
from portal.services.errors import Refused
from portal.tenancy.names import role_name, schema_name
from tests.conftest import SECOND_SERVER_ENV
from tests.factories import csrf_token, sign_in_staff, unique_slug
from tests.lifecycle.conftest import (
    TIER_SPECS,
    job_count,
    row_counts,
    tenant_count,
    tenant_redis_keys,
)

STEPS = [step.name for step in provisioning._steps("provision")]


@contextmanager
def fault_at(app, step):
    previous = app.config.get("PORTAL_FAULT_STEP")
    app.config["PORTAL_FAULT_STEP"] = step
    try:
        yield
    finally:
        app.config["PORTAL_FAULT_STEP"] = previous


def _create(slug, spec, placed):
    tier, placement = TIER_SPECS[spec]
    return provisioning.create_tenant(slug, "Faulty", "enterprise", f"admin@{slug}.example", tier=tier,
                                      placement_id=placed[placement].id if placement else None)


def _by_slug(slug):
    return db.session.execute(select(Tenant).where(Tenant.slug == slug)).scalar_one_or_none()


def test_the_steps_are_the_issues_steps():
    assert STEPS == ["registry record", "storage", "database role", "limits", "default settings",
                     "first admin and invitation", "cache warm-up"]


@pytest.mark.parametrize("spec", list(TIER_SPECS))
@pytest.mark.parametrize("step", STEPS)
def test_a_fault_at_any_step_leaves_only_the_failed_tenant(app, conn, placed, catalogs, redis_client, step, spec):
    prefix = app.config["PORTAL_REDIS_PREFIX"]
    before, count, job_rows = catalogs(), tenant_count(), job_count()
    slug = unique_slug("fault")
    with fault_at(app, step):
        with pytest.raises(Refused, match=re.escape(f"Provisioning failed at step “{step}”")) as refused:
            _create(slug, spec, placed)
    assert "fault injected" in refused.value.message

    # The tenant row is kept, `failed`, with the step and the reason.
    tenant = _by_slug(slug)
    assert tenant is not None
    assert (tenant.status, tenant.failed_step) == ("failed", step)
    assert f"fault injected at step “{step}”" in tenant.status_reason
    # Its job failed, naming the step; steps after it never started.
    job = jobqueue.latest_for_tenant(tenant.id)
    assert job.state == "failed" and job.finished_at is not None
    assert job.error.startswith(f"{step}: ") and "fault injected" in job.error
    states_by_step = {s["name"]: s["state"] for s in job.steps}
    for later in STEPS[STEPS.index(step) + 1:]:
        assert states_by_step[later] == "pending", (later, job.steps)
    failed_event = db.session.execute(select(AuditEvent).where(
        AuditEvent.tenant_id == tenant.id, AuditEvent.action == "tenant.failed")).scalar_one()
    assert failed_event.details["step"] == step and failed_event.details["undo_errors"] == []

    # Nothing else is left: no schema, database or role; one tenant row and one job more.
    assert catalogs() == before
    assert tenant_count() == count + 1 and job_count() == job_rows + 1
    if tenant.tier == "pool":
        assert row_counts(tenant) == (0, 0, 0)
    assert tenant_redis_keys(redis_client, prefix, tenant.id, slug) == []

    # Discarding removes the row, and leaves the catalogs as they were.
    provisioning.discard(tenant)
    assert _by_slug(slug) is None and tenant_count() == count
    assert catalogs() == before
    assert tenant_redis_keys(redis_client, prefix, tenant.id, slug) == []


@pytest.mark.parametrize("spec", list(TIER_SPECS))
def test_retry_after_a_fault_finishes_the_tenant(app, conn, placed, catalogs, run_jobs, imported, spec):
    before = catalogs()
    slug = unique_slug("retry")
    with fault_at(app, "limits"):
        with pytest.raises(Refused, match="“limits”"):
            _create(slug, spec, placed)
    tenant = _by_slug(slug)
    imported(tenant)  # drop its storage after the test, whatever happens
    assert (tenant.status, tenant.failed_step) == ("failed", "limits")
    assert catalogs() == before

    job = jobqueue.latest_for_tenant(tenant.id)
    dispatch.retry(job)
    assert job.state == "queued"
    assert run_jobs() >= 1
    db.session.refresh(tenant)
    db.session.refresh(job)
    assert job.state == "succeeded", (job.error, job.steps)
    assert {s["state"] for s in job.steps} == {"done"} and job.percent == 100
    assert (tenant.status, tenant.failed_step, tenant.status_reason) == ("active", None, None)
    # The first admin is invited like any user: the message waits in the outbox (no mail server).
    invitation = db.session.get(OutboxMessage, uuid.UUID(job.result["invitation"]))
    assert invitation.transport == "outbox" and "/set-password/" in invitation.body

    # Its storage exists: the first admin and the default settings are in it.
    assert row_counts(tenant) == (1, 0, len(tenant_settings.DEFAULTS))
    after = catalogs()
    if tenant.tier != "pool":  # the limits step: its role's caps
        url = os.environ[SECOND_SERVER_ENV] if spec == "silo-second" else app.config["DATABASE_URL"]
        with owner_connection(url) as conn:
            limit = conn.execute(text("select rolconnlimit from pg_roles where rolname = :r"),
                                 {"r": role_name(tenant.id)}).scalar_one()
        assert limit == app.config["TENANT_ROLE_CONNECTIONS"]
    if tenant.tier == "bridge":
        roles, _, schemas = after[0]
        assert schema_name(tenant.id) in schemas and role_name(tenant.id) in roles
    elif tenant.tier == "silo":
        server = 1 if spec == "silo-second" else 0
        roles, databases, _ = after[server]
        assert role_name(tenant.id) in roles and role_name(tenant.id) in databases
    else:
        assert after == before


# -- transitions that are not allowed ------------------------------------------------------
def _active(factory):
    return db.session.get(Tenant, factory.tenant().id)


def test_suspending_a_provisioning_tenant_is_refused(app, conn):
    slug = unique_slug()
    tenant, job = provisioning.request_tenant(slug, "Not Yet", "basic", f"admin@{slug}.example")
    with pytest.raises(Refused, match="this one is provisioning"):
        states.suspend(tenant, "abuse")
    db.session.refresh(tenant)
    assert tenant.status == "provisioning" and tenant.session_epoch == 0


def test_resuming_an_active_tenant_is_refused(app, conn, factory):
    tenant = _active(factory)
    with pytest.raises(Refused, match="this one is active"):
        states.resume(tenant, "why not")
    db.session.refresh(tenant)
    assert tenant.status == "active"


def test_purging_an_active_tenant_is_refused(app, conn, factory):
    tenant = _active(factory)
    jobs_before = job_count()
    with pytest.raises(Refused, match="this one is active"):
        retire.request_purge(tenant, tenant.slug)
    db.session.refresh(tenant)
    assert tenant.status == "active" and job_count() == jobs_before


@pytest.mark.parametrize("typed", [None, "", "   ", "someone-else", "DEMO"])
def test_deprovisioning_without_typing_the_slug_is_refused(app, conn, factory, typed):
    tenant = _active(factory)
    epoch, jobs_before = tenant.session_epoch, job_count()
    with pytest.raises(Refused, match=re.escape(f"Type the tenant's slug ({tenant.slug}) to confirm.")) as refused:
        retire.request_deprovision(tenant, typed)
    assert refused.value.field == "confirm"
    db.session.refresh(tenant)
    assert (tenant.status, tenant.session_epoch) == ("active", epoch)
    assert job_count() == jobs_before


def test_deprovisioning_with_a_wrong_slug_on_the_staff_page_changes_nothing(app, conn, client, factory):
    sign_in_staff(client, factory.staff())
    tenant = _active(factory)
    jobs_before = job_count()
    token = csrf_token(client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True))
    for typed in ("", tenant.slug.upper(), tenant.slug + "x"):
        response = client.post(f"/admin/tenants/{tenant.id}/deprovision", data={"confirm": typed, "csrf_token": token})
        assert response.status_code == 400
        body = response.get_data(as_text=True)
        assert 'id="confirm-error"' in body  # the message is beside the field
        if typed:
            assert f"Type the tenant&#39;s slug ({tenant.slug}) to confirm." in body
    db.session.refresh(tenant)
    assert tenant.status == "active" and job_count() == jobs_before


def test_discarding_an_active_tenant_is_refused(app, conn, factory, catalogs):
    tenant = _active(factory)
    count = tenant_count()
    with pytest.raises(Refused, match="this one is active"):
        provisioning.discard(tenant)
    db.session.refresh(tenant)
    assert tenant.status == "active" and tenant_count() == count
    assert row_counts(tenant)[0] == 1  # its first admin is still there


def test_every_refusal_names_the_state(app, conn, factory):
    """A transition that is not allowed names the state the tenant is in."""
    tenant = _active(factory)
    states.suspend(tenant, "unpaid invoices")
    for attempt in (lambda: states.suspend(tenant, "again"), lambda: provisioning.discard(tenant),
                    lambda: retire.request_purge(tenant, tenant.slug)):
        with pytest.raises(Refused, match="this one is suspended"):
            attempt()
    states.resume(tenant, "paid")
    assert tenant.status == "active"
    assert [e.action for e in db.session.execute(select(AuditEvent).where(
        AuditEvent.tenant_id == tenant.id).order_by(AuditEvent.id)).scalars()][-2:] == [
        "tenant.suspended", "tenant.resumed"]


def test_a_discard_that_stops_leaves_the_tenant_failed(app, conn, placed, catalogs, monkeypatch, imported):
    slug = unique_slug("stuck")
    with fault_at(app, "limits"):
        with pytest.raises(Refused):
            _create(slug, "silo-second", placed)
    tenant = _by_slug(slug)
    imported(tenant)
    monkeypatch.setenv(SECOND_SERVER_ENV, "postgresql://postgres@127.0.0.1:1/postgres")
    with pytest.raises(Refused, match="Discarding stopped: database role: .*Connection refused"):
        provisioning.discard(tenant)
    monkeypatch.undo()
    db.session.refresh(tenant)
    # Still failed, so staff can discard it again once the server answers.
    assert (tenant.status, tenant.failed_step) == ("failed", "limits")
    provisioning.discard(tenant)
    assert _by_slug(slug) is None
