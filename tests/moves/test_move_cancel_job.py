"""Issue 15: a move cancelled from the Jobs page, before its switch, is the move's own
cancel (lifecycle/moves.py): its job ends `cancelled`, the tenant stays where it was,
untouched; after the switch the page offers no Cancel and the service refuses."""
import pytest

from portal.extensions import db
from portal.lifecycle import cancelling, moves
from portal.services import jobqueue
from portal.services.errors import Refused
from tests.factories import csrf_token
from tests.moves.conftest import contents, move, staff_client
from tests.moves.test_move_undo import _still_home


def test_a_queued_move_cancelled_from_the_jobs_page_leaves_the_tenant_untouched(moving_app, made):
    tenant = made.tenant("pool")
    before = contents(tenant)
    client = staff_client(moving_app)
    row, job = moves.request_move(tenant, "bridge", None, ("system", None, "test"))
    page = client.get(f"/admin/jobs?tenant={tenant.slug}").get_data(as_text=True)
    assert f'action="/admin/jobs/{job.id}/cancel"' in page
    answer = client.post(f"/admin/jobs/{job.id}/cancel", data={"csrf_token": csrf_token(page), "back": "jobs"})
    assert answer.status_code == 302
    assert "the move undoes what it made" in client.get(answer.headers["Location"]).get_data(as_text=True)
    db.session.refresh(row)
    assert row.cancel_requested
    job = jobqueue.run(db.session.get(type(job), job.id), moves.run)  # the worker's delivery
    db.session.refresh(row)
    assert (job.state, row.state) == ("cancelled", "cancelled")
    _still_home(tenant, "pool", before)


def test_a_move_cancelled_by_its_job_while_it_copies(moving_app, made, monkeypatch):
    tenant = made.tenant("pool")
    before = contents(tenant)
    real_copy = moves.Mover.copy

    def copy_then_cancel(self):
        real_copy(self)
        cancelling.cancel(jobqueue.get(self.move.job_id), ("system", None, "test"))

    monkeypatch.setattr(moves.Mover, "copy", copy_then_cancel)
    row, job = move(tenant, "silo", "move-second")
    assert (job.state, row.state) == ("cancelled", "cancelled")
    _still_home(tenant, "pool", before)


def test_a_switched_move_cannot_be_cancelled(moving_app, made):
    tenant = made.tenant("pool")
    row, job = move(tenant, "bridge")
    assert row.state == "switched"
    with pytest.raises(Refused, match="this one is succeeded"):
        cancelling.cancel(job, ("system", None, "test"))
    client = staff_client(moving_app)
    assert f"/admin/jobs/{job.id}/cancel" not in client.get(f"/admin/jobs?tenant={tenant.slug}").get_data(as_text=True)
