"""Deprovisioning and purging (issue 4), from the staff pages, as jobs: the export is
kept, storage and role are removed, the tenant's Redis keys cleared, its sessions ended;
purge removes the export. Suspension ends sessions too."""
import os
from datetime import datetime, timedelta, timezone

import flask
import pytest
from sqlalchemy import select

from portal.auth.principals import load_user
from portal.extensions import db
from portal.lifecycle import exports
from portal.models import AuditEvent, Job, Tenant
from portal.services import jobqueue
from portal.services.keys import tenant_key
from portal.tenancy.context import TenantRef, tenant_context
from portal.tenancy.names import role_name, schema_name
from tests.factories import csrf_token, sign_in_staff, sign_in_tenant
from tests.lifecycle.conftest import TIER_SPECS, row_counts, tenant_redis_keys


@pytest.fixture()
def staff(app, client, factory):
    """A second client, signed in as a superadmin (the `client` is the tenant user's)."""
    staff_client = app.test_client()
    sign_in_staff(staff_client, factory.staff("superadmin"))
    return staff_client


def _post(client, tenant_id, action, **data):
    page = client.get(f"/admin/tenants/{tenant_id}")
    assert page.status_code == 200
    data["csrf_token"] = csrf_token(page.get_data(as_text=True))
    return client.post(f"/admin/tenants/{tenant_id}/{action}", data=data)


def _session_user(app, client, tenant):
    """Who the tenant realm's session cookie in `client` loads as, for `tenant` as it is now
    (the user loader the pages use); None when the session no longer works."""
    ref = TenantRef.of(db.session.get(Tenant, tenant.id))
    name = f"{app.config['SESSION_COOKIE_NAME']}_t{ref.id.hex}"
    cookie = client.get_cookie(name, path=f"/t/{ref.slug}/")
    assert cookie is not None, "no session cookie of the tenant"
    with tenant_context(ref), app.test_request_context(f"/t/{ref.slug}/", headers={"Cookie": f"{name}={cookie.value}"}):
        return load_user(flask.session["_user_id"])


def _actions(tenant_id):
    return [e.action for e in db.session.execute(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.id)).scalars()]


@pytest.mark.parametrize("spec", ["pool", "bridge"])
def test_deprovision_then_purge(app, client, staff, factory, make_tiered, run_jobs, redis_client, catalogs,
                                export_folder, spec):
    prefix = app.config["PORTAL_REDIS_PREFIX"]
    tier, placement = TIER_SPECS[spec]
    ref = make_tiered(tier, placement)
    user = factory.user(ref)
    factory.order(ref, number=1)
    neighbour = factory.tenant()  # a pool tenant beside it: untouched throughout
    factory.order(neighbour, number=1)
    neighbour_counts = row_counts(neighbour)

    # Before: a signed-in user, and keys of the tenant in Redis.
    sign_in_tenant(client, ref, user)
    assert client.get(f"/t/{ref.slug}/").status_code == 200
    assert _session_user(app, client, ref).id == user.id
    redis_client.set(tenant_key(ref.id, "x"), "1")
    redis_client.hset(tenant_key(ref.id, "usage", "2024-01"), mapping={"events": 3})
    redis_client.set(tenant_key(ref.id, "ratelimit", "api", "123"), "7", ex=600)
    redis_client.set(tenant_key(neighbour.id, "x"), "1")
    assert len(tenant_redis_keys(redis_client, prefix, ref.id, ref.slug)) >= 3
    before = catalogs()
    if tier == "bridge":
        assert schema_name(ref.id) in before[0][2] and role_name(ref.id) in before[0][0]
    tenant = db.session.get(Tenant, ref.id)
    epoch = tenant.session_epoch

    response = _post(staff, ref.id, "deprovision", confirm=ref.slug)
    assert response.status_code == 302
    db.session.refresh(tenant)
    assert tenant.status == "deprovisioning"
    job = jobqueue.latest_for_tenant(ref.id)
    assert (job.kind, job.state) == ("deprovision", "queued")
    assert run_jobs() >= 1

    db.session.refresh(tenant)
    db.session.refresh(job)
    assert job.state == "succeeded", (job.error, job.steps)
    assert {s["state"] for s in job.steps} == {"done"}
    assert tenant.status == "archived" and tenant.archived_at is not None
    expected_purge = datetime.now(timezone.utc) + timedelta(days=app.config["PORTAL_RETENTION_DAYS"])
    assert abs(tenant.purge_after - expected_purge) < timedelta(minutes=5)
    # The export is kept, inside the export folder, and holds the tenant's rows.
    assert tenant.export_path and os.path.exists(tenant.export_path)
    assert os.path.realpath(tenant.export_path).startswith(os.path.realpath(export_folder) + os.sep)
    manifest = exports.verify_export(tenant.export_path)
    assert manifest["tenant"]["id"] == str(ref.id)
    assert (manifest["tables"]["users"]["rows"], manifest["tables"]["orders"]["rows"]) == (2, 1)
    assert job.result["path"] == tenant.export_path

    # Its storage is gone: schema and role (bridge), its rows (pool).
    after = catalogs()
    if tier == "bridge":
        roles, databases, schemas = before[0]
        assert after[0] == (roles - {role_name(ref.id)}, databases, schemas - {schema_name(ref.id)})
        assert after[1] == before[1]
    else:
        assert after == before
        assert row_counts(ref) == (0, 0, 0)
    assert row_counts(neighbour) == neighbour_counts
    # Its Redis keys are gone; the neighbour's are not.
    assert tenant_redis_keys(redis_client, prefix, ref.id, ref.slug) == []
    assert job.result["redis_keys_removed"] >= 3
    assert redis_client.get(tenant_key(neighbour.id, "x")) == "1"

    # Its pages answer 410, and the old session no longer works.
    for path in ("/", "/login", "/orders", "/users"):
        assert client.get(f"/t/{ref.slug}{path}").status_code == 410, path
    assert tenant.session_epoch > epoch
    assert _session_user(app, client, ref) is None
    # The staff page offers the export for download.
    download = staff.get(f"/admin/jobs/{job.id}/download")
    assert download.status_code == 200 and download.mimetype == "application/zip"

    # The archived tenant's page says so honestly: the export linked, the purge scheduled
    # (not a job "queued 0%" that the page polls), and only what can be done offered.
    page = staff.get(f"/admin/tenants/{ref.id}").get_data(as_text=True)
    assert f'/admin/jobs/{job.id}/download' in page and 'id="archived-state"' in page
    assert "a purge job is scheduled" in page
    assert "data-poll" not in page
    for offered in ("/rename", "/plan\"", "/domains\"", "/suspend", "/deprovision", "/overrides"):
        assert offered not in page, offered
    assert 'id="purge-form"' in page

    # Purge is for good: the slug must be typed; without it or with another, nothing starts.
    export_path = tenant.export_path
    jobs_before = db.session.execute(select(Job.id).where(Job.tenant_id == ref.id)).all()
    for typed in ("", "not-" + ref.slug):
        refused = _post(staff, ref.id, "purge", **{"purge-confirm": typed})
        assert refused.status_code == 400
        assert 'id="purge-confirm-error"' in refused.get_data(as_text=True)
    assert db.session.execute(select(Job.id).where(Job.tenant_id == ref.id)).all() == jobs_before
    assert _post(staff, ref.id, "purge", **{"purge-confirm": ref.slug}).status_code == 302
    purge_job = jobqueue.latest_for_tenant(ref.id)
    assert (purge_job.kind, purge_job.state) == ("purge", "queued")
    assert run_jobs() >= 1
    db.session.refresh(tenant)
    db.session.refresh(purge_job)
    assert purge_job.state == "succeeded", purge_job.error
    assert tenant.status == "purged" and tenant.export_path is None
    assert not os.path.exists(export_path)
    assert client.get(f"/t/{ref.slug}/").status_code == 410
    assert staff.get(f"/admin/jobs/{job.id}/download").status_code == 404
    actions = _actions(ref.id)
    for action in ("tenant.deprovisioning", "tenant.archived", "tenant.purge_requested", "tenant.purged"):
        assert action in actions
    # Nothing more to do: purging again is refused, naming the state.
    db.session.refresh(tenant)
    jobs_before = db.session.execute(select(Job.id).where(Job.tenant_id == ref.id)).all()
    response = _post(staff, ref.id, "purge", **{"purge-confirm": ref.slug})
    assert response.status_code == 400
    assert "this one is purged" in response.get_data(as_text=True)
    assert db.session.execute(select(Job.id).where(Job.tenant_id == ref.id)).all() == jobs_before


def test_suspension_ends_sessions(app, client, staff, factory):
    ref = factory.tenant()
    user = factory.user(ref)
    sign_in_tenant(client, ref, user)
    assert client.get(f"/t/{ref.slug}/").status_code == 200

    assert _post(staff, ref.id, "suspend", reason="Unpaid invoices").status_code == 302
    suspended = client.get(f"/t/{ref.slug}/")
    assert suspended.status_code == 403 and "Unpaid invoices" in suspended.get_data(as_text=True)
    assert _post(staff, ref.id, "resume", reason="Paid").status_code == 302
    assert db.session.get(Tenant, ref.id).status == "active"

    # The session made before the suspension is anonymous now: the page sends to sign-in.
    after = client.get(f"/t/{ref.slug}/")
    assert after.status_code == 302 and "/login" in after.headers["Location"]
    assert _session_user(app, client, ref) is None
    # Signing in again works.
    sign_in_tenant(client, ref, user)
    assert client.get(f"/t/{ref.slug}/").status_code == 200
    assert [a for a in _actions(ref.id) if a.startswith("tenant.")][-2:] == ["tenant.suspended", "tenant.resumed"]
