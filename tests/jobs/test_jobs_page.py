"""Issue 15, the staff Jobs page: each row names its tenant (the column said "open" on every
row: the link's text was the word "open"), filters by kind, state and tenant slug in the
URL, and links each job to what it produced."""
import re
import uuid
from datetime import datetime, timedelta, timezone

from portal.extensions import db
from portal.models import Placement
from portal.services import jobqueue
from tests.factories import sign_in_staff


def _job(kind, tenant=None, state="queued", **fields):
    job = jobqueue.create(kind, tenant.id if tenant else None, [kind], "jobs-test@staff.example",
                          params=fields.pop("params", None))
    job.state = state
    for name, value in fields.items():
        setattr(job, name, value)
    db.session.flush()
    return job


def _rows(client, query=""):
    page = client.get(f"/admin/jobs{query}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    return body, re.findall(r"<tr><td>(.*?)</tr>", body.split('id="jobs"')[1], re.S)


def test_rows_name_their_tenant_and_link_what_they_produced(client, factory, tmp_path):
    acme, other = factory.tenant(), factory.tenant()
    export = _job("export", acme, "succeeded", result={"path": str(tmp_path / "acme.zip")})
    move = _job("move", acme, "running", params={"move": str(uuid.uuid4())})
    source, target = (Placement(name=f"pl-{uuid.uuid4().hex[:6]}", capacity=5)
                      for _ in range(2))
    db.session.add_all([source, target])
    db.session.flush()
    _job("drain", None, "succeeded", params={"placement": str(source.id), "to": str(target.id)})
    sign_in_staff(client, factory.staff("superadmin"))
    body, rows = _rows(client)
    assert ">open<" not in body
    export_row = next(r for r in rows if f"/admin/jobs/{export.id}/download" in r)
    assert f'<a href="/admin/tenants/{acme.id}">{acme.slug}</a>' in export_row and "Download the export" in export_row
    move_row = next(r for r in rows if f"/admin/moves/{move.params['move']}" in r)
    assert acme.slug in move_row and "The move" in move_row
    drain_row = next(r for r in rows if "/admin/placements" in r)
    assert f"Placement {source.name} → {target.name}" in drain_row
    provision_row = next(r for r in rows if ">provision<" in r and other.slug in r)
    assert f'href="/admin/tenants/{other.id}">Tenant {other.slug}</a>' in provision_row


def test_a_viewer_sees_no_download_link(client, factory, tmp_path):
    tenant = factory.tenant()
    export = _job("export", tenant, "succeeded", result={"path": str(tmp_path / "x.zip")})
    sign_in_staff(client, factory.staff("viewer"))  # tenants.view, not tenants.export
    body, _ = _rows(client)
    assert tenant.slug in body and f"/admin/jobs/{export.id}/download" not in body


def test_filters_by_kind_state_and_tenant_in_the_url(client, factory):
    acme, beta = factory.tenant(), factory.tenant()
    _job("export", acme, "failed")
    _job("export", beta, "succeeded")
    stale = _job("move", acme, "running", heartbeat_at=datetime.now(timezone.utc) - timedelta(hours=1))
    sign_in_staff(client, factory.staff("support"))
    body, rows = _rows(client, f"?kind=export&tenant={acme.slug}")
    assert len(rows) == 1 and acme.slug in rows[0] and "failed" in rows[0]
    assert '<option value="export" selected>' in body and f'name="tenant" value="{acme.slug}"' in body
    # (Other tests' jobs may be committed in this database: filter by tenant as well.)
    _, rows = _rows(client, f"?kind=export&state=succeeded&tenant={beta.slug}")
    assert len(rows) == 1 and beta.slug in rows[0] and "succeeded" in rows[0]
    _, rows = _rows(client, f"?kind=export&state=succeeded&tenant={acme.slug}")
    assert rows == []
    _, rows = _rows(client, f"?state=interrupted&tenant={acme.slug.upper()}")  # the state the page shows
    assert len(rows) == 1 and "interrupted" in rows[0] and ">move<" in rows[0]
    assert stale.state == "running"
    body, rows = _rows(client, "?tenant=no-such-tenant")
    assert rows == [] and "No jobs match these filters." in body


def test_a_filter_value_the_page_does_not_offer_is_said_beside_its_field(client, factory):
    tenant = factory.tenant()
    sign_in_staff(client, factory.staff("superadmin"))
    body, rows = _rows(client, "?kind=<b>bogus</b>&state=exploded&tenant=" + tenant.slug)
    assert 'id="kind-error"' in body and "Not a kind of job" in body and "<b>bogus</b>" not in body
    assert 'id="state-error"' in body and "Not a state" in body and 'aria-invalid="true"' in body
    assert rows and all(tenant.slug in r for r in rows)  # the good filter still applies
