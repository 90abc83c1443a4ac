"""Issue 15, jobs: cancel a queued or running job where its kind allows. A queued export is
cancelled and never runs; a running one stops between tables and its partial file is
removed (the saga's undo); a kind that cannot be cancelled is refused with its reason,
nothing changed, and shows no Cancel button. (A move before its switch: tests/moves/
test_move_cancel_job.py, which commits for real.)"""
import os
import re

import pytest
from sqlalchemy import func, select, update

from portal.extensions import db
from portal.lifecycle import cancelling, dispatch, exports
from portal.lifecycle.exports import request_export, run_export
from portal.models import AuditEvent, Job
from portal.services import jobqueue
from portal.services.errors import Refused
from portal.tenants.services import get_tenant
from tests.factories import csrf_token, sign_in_staff

SYSTEM = ("system", None, "test")


def _export_job(tenant):
    return request_export(get_tenant(tenant.id), SYSTEM)


def _files(tenant, app):
    folder = os.path.join(app.config["PORTAL_EXPORT_DIR"], str(tenant.id))
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _events(action, job):
    return db.session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == action, AuditEvent.details["job"].astext == str(job.id))).scalar_one()


def _tenant_events(tenant):
    return db.session.execute(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.tenant_id == tenant.id)).scalar_one()


def _cancel_button(body, job):
    return f'action="/admin/jobs/{job.id}/cancel"' in body


def test_a_queued_export_is_cancelled_from_the_jobs_page_and_never_runs(app, client, factory):
    tenant = factory.tenant()
    job = _export_job(tenant)
    sign_in_staff(client, factory.staff("operator"))
    page = client.get(f"/admin/jobs?tenant={tenant.slug}").get_data(as_text=True)
    assert _cancel_button(page, job)
    form = re.search(rf'<form[^>]*action="/admin/jobs/{job.id}/cancel"[^>]*>', page).group(0)
    assert "data-confirm=" in form  # console.js asks first
    answer = client.post(f"/admin/jobs/{job.id}/cancel", data={"csrf_token": csrf_token(page), "back": "jobs"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/jobs")
    assert "Cancelled: the export will not run." in client.get("/admin/jobs").get_data(as_text=True)
    db.session.refresh(job)
    assert job.state == "cancelled" and job.finished_at is not None and job.cancel_requested
    assert _events("job.cancelled", job) == 1
    # The worker's delivery skips it: no file, still cancelled.
    assert dispatch.execute(job.id) is None
    db.session.refresh(job)
    assert job.state == "cancelled" and job.started_at is None and _files(tenant, app) == []
    # Cancelled is final: no second cancel, no button.
    with pytest.raises(Refused, match="Only a queued or running job can be cancelled; this one is cancelled"):
        cancelling.cancel(job, SYSTEM)
    assert not _cancel_button(client.get(f"/admin/jobs?tenant={tenant.slug}").get_data(as_text=True), job)


def test_a_running_export_stops_between_tables_and_its_partial_file_is_removed(app, factory, monkeypatch):
    tenant = factory.tenant()
    factory.order(tenant, number=1, customer="Someone")
    job = _export_job(tenant)
    real_copy_out, tables = exports.copying.copy_out, []

    def copy_out_then_cancel(session, table, out):
        result = real_copy_out(session, table, out)
        tables.append(table.name)
        if len(tables) == 1:  # staff press Cancel while the first table is written
            # (the flag cancel() sets, set here without its commit: in tests the registry and
            # the tenant's snapshot share one connection, and a commit would end the snapshot)
            db.session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True))
            assert _files(tenant, app), "the partial file is there meanwhile"
        return result

    monkeypatch.setattr(exports.copying, "copy_out", copy_out_then_cancel)
    job = jobqueue.run(job, run_export)
    assert job.state == "cancelled" and "cancelled by staff" in job.error
    assert len(tables) == 1, "no table after the cancel"
    assert _files(tenant, app) == []  # the saga's undo removed the partial zip
    assert not (job.result or {}).get("path")
    assert next(s for s in job.steps if s["name"] == "export")["state"] == "failed, undone"
    assert _events("job.cancelled", job) == 1


def test_cancelling_a_running_export_asks_it_to_stop(factory):
    tenant = factory.tenant()
    job = _export_job(tenant)
    job.state = "running"
    db.session.commit()
    assert cancelling.cancel(job, SYSTEM).startswith("Cancelling: the export stops after the table")
    assert (job.state, job.cancel_requested) == ("running", True)  # the export itself ends it
    assert _events("job.cancel_requested", job) == 1
    with pytest.raises(Refused, match="asked to stop already"):
        cancelling.cancel(job, SYSTEM)


def test_a_cancel_asked_as_a_worker_takes_the_job_stops_it_before_any_table(app, factory):
    tenant = factory.tenant()
    job = _export_job(tenant)
    job.cancel_requested = True  # (cancel() saw it queued; the worker read it queued too)
    db.session.commit()
    job = jobqueue.run(job, run_export)
    assert job.state == "cancelled" and _files(tenant, app) == []


@pytest.mark.parametrize("kind, words", [
    ("deprovision", "A deprovisioning cannot be cancelled"),
    ("purge", "A purge cannot be cancelled"),
    ("provision", "A provisioning cannot be cancelled"),
    ("upgrade", "An upgrade run cannot be cancelled"),
])
def test_a_kind_that_cannot_be_cancelled_is_refused_and_shows_no_button(client, factory, kind, words):
    tenant = factory.tenant()
    job = jobqueue.create(kind, tenant.id, [kind], "jobs-test@staff.example")
    job.state = "running"
    db.session.commit()
    sign_in_staff(client, factory.staff("superadmin"))
    page = client.get(f"/admin/jobs?tenant={tenant.slug}").get_data(as_text=True)
    before = (job.state, job.cancel_requested, _tenant_events(tenant))
    assert kind in page and not _cancel_button(page, job)
    answer = client.post(f"/admin/jobs/{job.id}/cancel", data={"csrf_token": csrf_token(page)})
    assert answer.status_code == 302
    assert words in client.get(answer.headers["Location"]).get_data(as_text=True)
    db.session.refresh(job)
    after = (job.state, job.cancel_requested, _tenant_events(tenant))
    assert after == before


def test_finished_jobs_and_roles_without_the_permission_cannot_cancel(client, factory):
    tenant = factory.tenant()
    done = factory.export_job(tenant)
    queued = _export_job(tenant)
    with pytest.raises(Refused, match="this one is succeeded"):
        cancelling.cancel(done, SYSTEM)
    viewer = factory.staff("viewer")
    sign_in_staff(client, viewer)
    page = client.get(f"/admin/jobs?tenant={tenant.slug}").get_data(as_text=True)
    assert not _cancel_button(page, queued)
    assert client.post(f"/admin/jobs/{queued.id}/cancel", data={"csrf_token": csrf_token(page)}).status_code == 403
    db.session.refresh(queued)
    assert queued.state == "queued" and not queued.cancel_requested
    assert db.session.get(Job, queued.id).state == "queued"


def test_cancel_of_junk_ids_is_404(client, factory):
    sign_in_staff(client, factory.staff("operator"))
    page = client.get("/admin/jobs").get_data(as_text=True)
    for junk in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", "1"):
        assert client.post(f"/admin/jobs/{junk}/cancel", data={"csrf_token": csrf_token(page)}).status_code == 404


def test_a_retried_job_forgets_an_old_cancel(factory):
    tenant = factory.tenant()
    job = _export_job(tenant)
    job.state, job.cancel_requested = "failed", True
    db.session.commit()
    dispatch.retry(job)  # (enqueued on the test Redis: no worker runs it here)
    assert job.state == "queued" and not job.cancel_requested
