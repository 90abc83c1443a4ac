"""The move from the staff console: what moves and the target, bad input beside its field
with nothing recorded, the live page by phase with its figures, cancel and the old copy
dropped early; the placements page's drain; a plan change offering the move."""
import re

from sqlalchemy import select

from portal.extensions import db
from portal.lifecycle import moves, placements
from portal.models import Job, TenantMove
from portal.services import jobqueue
from tests.factories import csrf_token
from tests.moves.conftest import staff_client


def _queued_job(tenant):
    return db.session.execute(select(Job).where(Job.tenant_id == tenant.id, Job.kind == "move")
                              .order_by(Job.created_at.desc())).scalars().first()


def test_staff_move_a_tenant_and_follow_it(moving_app, made):
    tenant = made.tenant("pool")
    client = staff_client(moving_app)
    page = client.get(f"/admin/tenants/{tenant.id}/move")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "What moves" in body and "orders" in body and "Estimate" in body
    token = csrf_token(body)
    for data, message in (({"tier": "cloud"}, "Not a valid choice"), ({"tier": "pool"}, "is already there"),
                          ({"tier": "bridge", "max_freeze_ms": "10"},
                           "Enter a whole number of milliseconds from 50 to 60000"),
                          ({"tier": "bridge", "placement": str(placements.by_name("move-local").id)},
                           "Only silo tenants")):
        refused = client.post(f"/admin/tenants/{tenant.id}/move", data={**data, "csrf_token": token})
        assert refused.status_code == 400 and message in refused.get_data(as_text=True), (data, message)
    assert moves.moves_of(tenant.id) == []
    second = str(placements.by_name("move-second").id)
    asked = client.post(f"/admin/tenants/{tenant.id}/move", data={"tier": "silo", "csrf_token": token,
                                                                 "placement": second})
    assert asked.status_code == 302
    move = moves.under_way(tenant.id)
    queued = client.get(asked.headers["Location"]).get_data(as_text=True)
    assert "data-poll" in queued and "Cancel the move" in queued
    jobqueue.run(_queued_job(tenant), moves.run)  # what the worker does
    db.session.refresh(move)
    done = client.get(f"/admin/moves/{move.id}").get_data(as_text=True)
    assert "switched" in done and 'id="freeze-ms"' in done and "counts and checksums equal" in done
    assert "data-poll" not in done and "Drop the old copy now" in done
    assert "move-second" in client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True)
    late = client.post(f"/admin/moves/{move.id}/cancel", data={"csrf_token": csrf_token(done)})
    assert "Only a move that has not begun to switch" in client.get(late.headers["Location"]).get_data(as_text=True)
    dropping = client.post(f"/admin/moves/{move.id}/drop-old-copy", data={"csrf_token": csrf_token(done)})
    assert dropping.status_code == 302
    drop_job = db.session.execute(select(Job).where(Job.kind == "drop old copy", Job.tenant_id == tenant.id)
                                  .order_by(Job.created_at.desc())).scalars().first()
    jobqueue.run(drop_job, moves.run_drop)
    db.session.refresh(move)
    assert move.dropped_at is not None
    listing = client.get("/admin/moves").get_data(as_text=True)
    assert tenant.slug in listing and "dropped" in listing


def test_a_viewer_sees_moves_but_may_not_start_one(moving_app, made):
    tenant = made.tenant("pool")
    client = staff_client(moving_app, "viewer")
    assert client.get("/admin/moves").status_code == 200
    assert client.get(f"/admin/tenants/{tenant.id}/move").status_code == 403
    assert "Move…" not in client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True)


def test_cancel_from_the_page_before_the_switch(moving_app, made):
    tenant = made.tenant("pool")
    client = staff_client(moving_app)
    move, job = moves.request_move(tenant, "bridge", None, ("system", None, "test"))
    page = client.get(f"/admin/moves/{move.id}").get_data(as_text=True)
    assert client.post(f"/admin/moves/{move.id}/cancel", data={"csrf_token": csrf_token(page)}).status_code == 302
    jobqueue.run(job, moves.run)
    db.session.refresh(move)
    assert move.state == "cancelled" and db.session.get(TenantMove, move.id).cancel_requested
    db.session.refresh(tenant)
    assert tenant.tier == "pool"


def test_the_placements_page_drains_a_server(moving_app, made):
    tenant = made.tenant("silo", "move-second")
    client = staff_client(moving_app, "superadmin")
    page = client.get("/admin/placements").get_data(as_text=True)
    assert "move-second" in page and "Drain" in page
    # Issue 14, item 3: draining asks first (console.js: data-confirm).
    assert re.search(r'<form[^>]*/drain"[^>]*data-confirm="Drain move-second\? Its 1 tenant\(s\) move', page)
    second, local = placements.by_name("move-second"), placements.by_name("move-local")
    same = client.post(f"/admin/placements/{second.id}/drain", data={"to": str(second.id),
                                                                     "csrf_token": csrf_token(page)})
    assert same.status_code == 400 and "Drain a placement to another one" in same.get_data(as_text=True)
    asked = client.post(f"/admin/placements/{second.id}/drain", data={"to": str(local.id),
                                                                      "csrf_token": csrf_token(page)})
    assert asked.status_code == 302
    drain = jobqueue.recent_of_kind("drain", 1)[0]
    drain = jobqueue.run(drain, moves.run_drain)
    assert drain.state == "succeeded", drain.error
    db.session.refresh(tenant)
    assert tenant.placement.name == "move-local"


def test_a_plan_change_offers_the_move_to_its_tier(moving_app, made):
    tenant = made.tenant("silo", "move-local", plan="enterprise")
    client = staff_client(moving_app)
    page = client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True)
    changed = client.post(f"/admin/tenants/{tenant.id}/plan", data={"plan": "basic", "csrf_token": csrf_token(page)})
    assert changed.status_code == 302
    body = client.get(changed.headers["Location"]).get_data(as_text=True)
    assert "puts its tenants in <strong>pool</strong>" in body and f"/admin/tenants/{tenant.id}/move?tier=pool" in body
