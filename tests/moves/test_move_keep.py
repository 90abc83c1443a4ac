"""After a switch the old copy stays fenced for MOVE_MIN_KEEP_SECONDS, whatever asks to drop
it (staff, the page, a next move): a request that began before the switch may still write
there, and the fence refuses it rather than letting the write land in a copy about to go.
Deprovisioning a tenant drops a kept old copy with the rest."""
import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.lifecycle import moves, retire
from portal.services import jobqueue
from portal.services.errors import Refused
from portal.tenancy.context import TenantRef
from portal.tenancy.data import Order
from portal.tenancy.placement import tenant_session, tenant_transaction
from tests.factories import csrf_token
from tests.moves.conftest import move, staff_client


@pytest.fixture()
def kept(moving_app, made, monkeypatch):
    """A pool tenant just moved to the second server, its old copy still in the pool."""
    monkeypatch.setitem(moving_app.config, "MOVE_MIN_KEEP_SECONDS", 300)
    tenant = made.tenant("pool")
    old = TenantRef.of(tenant)
    row, job = move(tenant, "silo", "move-second")
    assert job.state == "succeeded", job.error
    return tenant, old, row


def test_the_old_copy_refuses_a_late_write_and_cannot_be_dropped_yet(moving_app, kept):
    tenant, old, row = kept
    with pytest.raises(Exception, match="tenant writes are refused: moved"):  # a request still bound there
        with tenant_transaction(old) as session:
            session.add(Order(tenant_id=tenant.id, number=900, customer="late", amount_cents=1, status="open"))
    for drop in (moves.drop_old_copy, moves.request_drop):
        with pytest.raises(Refused, match="stays fenced until .* UTC \\(300 s after the switch\\)"):
            drop(row)
    with pytest.raises(Refused, match="moved moments ago; its old copy stays fenced until"):
        moves.request_move(tenant, "pool", None, ("system", None, "test"))
    db.session.refresh(row)
    assert row.old_copy_kept and row.drop_after >= row.switched_at
    with tenant_session(old) as session:  # still there, untouched
        assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 20


def test_the_page_says_why_the_old_copy_cannot_go_yet(moving_app, kept):
    _tenant, _old, row = kept
    client = staff_client(moving_app)
    page = client.get(f"/admin/moves/{row.id}").get_data(as_text=True)
    assert "It can be dropped from" in page and "Drop the old copy now" not in page
    answer = client.post(f"/admin/moves/{row.id}/drop-old-copy", data={"csrf_token": csrf_token(page)})
    assert "stays fenced until" in client.get(answer.headers["Location"]).get_data(as_text=True)
    db.session.refresh(row)
    assert row.old_copy_kept


def test_deprovisioning_drops_a_kept_old_copy(moving_app, kept):
    tenant, old, row = kept
    job = retire.request_deprovision(tenant, tenant.slug, ("system", None, "test"))
    job = jobqueue.run(job, retire.deprovision)
    assert job.state == "succeeded", job.error
    db.session.refresh(row)
    assert row.dropped_at is not None and not row.old_copy_kept
    with tenant_session(old) as session:  # the pool rows of the old copy are gone
        assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 0
