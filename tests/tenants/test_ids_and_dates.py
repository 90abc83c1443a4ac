"""Wide tables (issue 14): a date in a table is one <time class="when"> (the text as
before, "%Y-%m-%d %H:%M", with seconds where the page showed them, or the day alone),
and an id is a short monospace <code class="id"> with the whole id in its title."""
import re
import uuid
from datetime import datetime, timezone

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, OutboxMessage, PlanRequest, TenantDomain, UpgradeRun
from portal.models.move import TenantMove
from portal.tenants.services import get_tenant
from tests.factories import make_token, sign_in_staff, sign_in_tenant
from tests.support.helpers import start


def when(value, seconds=False):
    """What a table shows for `value`: a datetime to the minute (or second), a date alone."""
    if isinstance(value, datetime):
        return f'<time class="when" datetime="{value.isoformat()}">' \
               f'{value:%Y-%m-%d %H:%M:%S}</time>' if seconds else \
               f'<time class="when" datetime="{value.isoformat()}">{value:%Y-%m-%d %H:%M}</time>'
    return f'<time class="when" datetime="{value.isoformat()}">{value.isoformat()}</time>'


def table(client, path, table_id):
    answer = client.get(path)
    assert answer.status_code == 200, path
    body = answer.get_data(as_text=True)
    return body.split(f'id="{table_id}"')[1].split("</table>")[0]


def fresh(row):
    db.session.add(row)
    db.session.flush()
    db.session.refresh(row)  # its server-made times
    return row


def test_staff_tables_show_each_date_on_one_line(client, factory):
    tenant = factory.tenant()
    staff = factory.staff("superadmin")
    sign_in_staff(client, staff)
    created = get_tenant(tenant.id).created_at
    assert when(created) in table(client, f"/admin/tenants?q={tenant.slug}", "tenants")

    asked = fresh(PlanRequest(tenant_id=tenant.id, from_plan="basic", to_plan="professional",
                              requested_by=f"admin@{tenant.slug}.example"))
    assert when(asked.created_at) in table(client, "/admin/plan-requests", "plan-requests")

    mail = db.session.execute(select(OutboxMessage).where(OutboxMessage.tenant_id == tenant.id)).scalars().first()
    assert when(mail.created_at, seconds=True) in table(client, f"/admin/outbox?to={mail.to_address}", "outbox")

    run = fresh(UpgradeRun(started_by=staff.email, status="succeeded", target="all"))
    assert when(run.started_at, seconds=True) in table(client, "/admin/upgrades", "runs")

    move = fresh(TenantMove(tenant_id=tenant.id, from_tier="pool", to_tier="bridge", state="cancelled",
                            max_freeze_ms=500, created_by=staff.email))
    assert when(move.created_at) in table(client, "/admin/moves", "moves")

    sessions = table(client, "/admin/account/sessions", "sessions")
    assert re.search(r'<td class="nowrap"><time class="when" datetime="[^"]+">'
                     r'\d{4}-\d\d-\d\d \d\d:\d\d</time> UTC</td>', sessions)

    assert start(client, tenant, factory.user(tenant)).status_code == 302
    row = table(client, "/admin/impersonations", "impersonations").split(f"{tenant.slug}</a>")[1].split("</tr>")[0]
    assert len(re.findall(r'<time class="when" datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d</time>', row)) == 2
    # No date in these tables is written out as before, outside a <time>.
    for path, table_id in (("/admin/plan-requests", "plan-requests"), ("/admin/upgrades", "runs"),
                           ("/admin/moves", "moves"), ("/admin/impersonations", "impersonations")):
        cells = re.sub(r"<time [^>]*>.*?</time>", "", table(client, path, table_id))
        assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", cells), path


def test_audit_details_show_ids_short_with_the_whole_id_in_the_title(client, factory):
    sign_in_staff(client, factory.staff("superadmin"))
    job = str(uuid.uuid4())
    action = f"test.ids-{uuid.uuid4().hex[:6]}"
    db.session.add(AuditEvent(actor_kind="staff", actor_label="someone@staff.example", action=action, target="t",
                              details={"job": job, "note": "not-an-id-but-36-characters-long-xxxx"},
                              occurred_at=datetime(2026, 3, 4, 9, tzinfo=timezone.utc)))
    db.session.flush()
    rows = table(client, f"/admin/audit?action={action}", "audit")
    assert f'<dt>job</dt><dd><code class="id" title="{job}" aria-label="{job}">{job[:8]}…</code></dd>' in rows
    assert rows.count(job) == 2  # the title and the label: not the whole id as text
    assert "<dd>not-an-id-but-36-characters-long-xxxx</dd>" in rows  # only a UUID's shape is cut


def test_tenant_tables_show_each_date_on_one_line(client, factory):
    tenant = factory.tenant(plan="professional")
    admin = factory.admin(tenant)
    sign_in_tenant(client, tenant, admin)
    make_token(tenant, admin, days=30, name="ci-dates")
    tokens = table(client, f"/t/{tenant.slug}/tokens", "tokens")
    made = re.search(r'<time class="when" datetime="(\d{4}-\d\d-\d\d)">(\d{4}-\d\d-\d\d)</time> by ', tokens)
    assert made and made.group(1) == made.group(2)
    assert len(re.findall(r'<td><time class="when" datetime="(\d{4}-\d\d-\d\d)">\1</time></td>', tokens)) == 1  # ends

    order = factory.order(tenant, number=7)
    with_order = table(client, f"/t/{tenant.slug}/orders", "orders")
    assert re.search(r'<td class="nowrap"><time class="when" datetime="(\d{4}-\d\d-\d\d)">\1</time></td>', with_order)
    assert order.number == 7

    checked = datetime(2026, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    db.session.add(TenantDomain(tenant_id=tenant.id, domain=f"{tenant.slug}.dates-example.com",
                                verification_token="x" * 32, last_checked_at=checked))
    db.session.flush()
    assert '<time class="when" datetime="2026-05-06T07:08:09+00:00">2026-05-06 07:08:09</time>' in \
        table(client, f"/t/{tenant.slug}/domains", "domains")
