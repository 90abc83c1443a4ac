"""Issue 15, audit: the staff page filters by actor, action and tenant (bad values said beside
their field, kept, not applied); one event's detail page; the staff CSV of the filtered log
equals the page's rows; a tenant's own export (plans with `audit_export`) holds its own
events only, even with a forged tenant=; without the feature the link is hidden and the
address answers the feature's refusal."""
import csv
import io
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from portal.extensions import db
from portal.models import AuditEvent
from tests.factories import sign_in_staff, sign_in_tenant


def _event(action, tenant=None, label="alice@staff.example", kind="staff", at=None, **fields):
    event = AuditEvent(actor_kind=kind, actor_label=label, tenant_id=tenant.id if tenant else None, action=action,
                       target=fields.pop("target", "t"), details=fields.pop("details", {}),
                       occurred_at=at or datetime.now(timezone.utc), **fields)
    db.session.add(event)
    db.session.commit()
    return event


def _page_ids(client, query):
    answer = client.get(f"/admin/audit?{query}")
    assert answer.status_code == 200, query
    rows = answer.get_data(as_text=True).split("<tbody>")[1].split("</tbody>")[0]
    return [int(i) for i in re.findall(r'href="/admin/audit/(\d+)"', rows)]


def _csv(answer):
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"].startswith("attachment; filename=")
    return list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))


@pytest.fixture()
def log(factory):
    """Two tenants' events by two actors, with a run-unique action prefix."""
    a, b = factory.tenant(), factory.tenant()
    tag = uuid.uuid4().hex[:6]
    start = datetime.now(timezone.utc) - timedelta(minutes=10)
    events = {
        "a1": _event(f"t{tag}.created", a, "alice@staff.example", at=start),
        "a2": _event(f"t{tag}.changed", a, "bob@staff.example", at=start + timedelta(seconds=1)),
        "b1": _event(f"t{tag}.created", b, "alice@staff.example", at=start + timedelta(seconds=2)),
        "b2": _event(f"t{tag}.changed", b, "bob@staff.example", at=start + timedelta(seconds=3),
                     details={"formula": "=cmd()", "job": str(uuid.uuid4())}, ip="203.0.113.9"),
    }
    return {"a": a, "b": b, "tag": tag, "events": events}


def test_staff_filters_by_actor_action_and_tenant(client, factory, log):
    sign_in_staff(client, factory.staff("viewer"))
    e, tag, a, b = log["events"], log["tag"], log["a"], log["b"]
    shown = _page_ids(client, f"tenant={a.slug}")  # (with A's own creation events)
    assert shown.index(e["a2"].id) < shown.index(e["a1"].id) and not {e["b1"].id, e["b2"].id} & set(shown)
    assert _page_ids(client, f"tenant={b.slug.upper()}&action=t{tag}.created") == [e["b1"].id]
    assert _page_ids(client, f"actor=BOB@staff.example&action=t{tag}.changed") == [e["b2"].id, e["a2"].id]
    assert _page_ids(client, f"actor=alice@staff.example&tenant={a.slug}") == [e["a1"].id]
    assert _page_ids(client, "tenant=no-such-tenant") == []
    body = client.get(f"/admin/audit?action=t{tag}.created&tenant={a.slug}").get_data(as_text=True)
    assert f'<option value="t{tag}.created" selected>' in body and f'value="{a.slug}"' in body


@pytest.mark.parametrize("query, field, message", [
    ("tenant=Not%20A%20Slug!", "tenant", "A tenant&#39;s slug: lower-case letters"),
    ("tenant=" + "a" * 64, "tenant", "A tenant&#39;s slug"),
    ("actor=" + "x" * 255, "actor", "Who acted: an email address"),
    ("actor=a%01b", "actor", "Who acted"),
    ("action=%3Cscript%3E", "action", "An action as the log names it"),
    ("action=" + "a" * 65, "action", "An action as the log names it"),
])
def test_bad_filters_are_said_beside_their_field(client, factory, log, query, field, message):
    sign_in_staff(client, factory.staff("superadmin"))
    answer = client.get(f"/admin/audit?{query}&tenant_keep=1")
    assert answer.status_code == 400
    body = answer.get_data(as_text=True)
    assert re.search(rf'<p class="error" id="audit-{field}-error">{message}', body), body[-2000:]
    control = re.search(rf'<(?:input|select)[^>]*id="audit-{field}"[^>]*>', body).group(0)
    assert 'aria-invalid="true"' in control and f'aria-describedby="audit-{field}-error"' in control
    assert 'id="audit-export"' not in body  # no export of a filter that was not applied
    csv_answer = client.get(f"/admin/audit.csv?{query}")
    assert csv_answer.status_code == 400 and csv_answer.get_data(as_text=True).startswith(f"{field}: ")


def test_a_bad_filter_is_kept_and_the_others_still_apply(client, factory, log):
    sign_in_staff(client, factory.staff("superadmin"))
    answer = client.get(f"/admin/audit?tenant=BAD%20SLUG&action=t{log['tag']}.created&actor=bob@staff.example")
    assert answer.status_code == 400
    body = answer.get_data(as_text=True)
    assert 'value="BAD SLUG"' in body and "No events match." in body  # bob created nothing


def test_the_detail_page_shows_every_field(client, factory, log):
    sign_in_staff(client, factory.staff("support"))
    event = log["events"]["b2"]
    answer = client.get(f"/admin/audit/{event.id}")
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    assert f"t{log['tag']}.changed" in body and "bob@staff.example" in body and log["b"].slug in body
    assert "<dt>formula</dt><dd>=cmd()</dd>" in body  # details as readable pairs
    assert '<code class="id" title="' in body  # the job id short, whole on hover
    assert '{"' not in body and "203.0.113.9" in body
    listing = client.get(f"/admin/audit?tenant={log['b'].slug}").get_data(as_text=True)
    assert f'href="/admin/audit/{event.id}"' in listing


@pytest.mark.parametrize("junk", ["999999999999999999", "abc", "-1", "1.5", "9" * 40, "%C2%B2", "0x10", " 1"])
def test_the_detail_of_a_bad_id_is_404(client, factory, junk):
    sign_in_staff(client, factory.staff("superadmin"))
    assert client.get(f"/admin/audit/{junk}").status_code == 404


def test_the_staff_csv_equals_the_filtered_page(client, factory, log):
    sign_in_staff(client, factory.staff("viewer"))
    tag = log["tag"]
    for query in (f"action=t{tag}.changed", f"tenant={log['a'].slug}",
                  f"actor=alice@staff.example&action=t{tag}.created",
                  f"tenant={log['b'].slug}&from=2000-01-01&to=9999-12-31"):
        page = client.get(f"/admin/audit?{query}").get_data(as_text=True)
        link = re.search(r'id="audit-export" href="([^"]+)"', page).group(1).replace("&amp;", "&")
        assert link.startswith("/admin/audit.csv?")
        rows = _csv(client.get(link))
        assert [int(r["id"]) for r in rows] == _page_ids(client, query), query
    rows = {int(r["id"]): r for r in _csv(client.get(f"/admin/audit.csv?tenant={log['b'].slug}"))}
    b2 = rows[log["events"]["b2"].id]
    assert b2["tenant"] == log["b"].slug and b2["actor"] == "bob@staff.example" and b2["action"] == f"t{tag}.changed"
    assert json.loads(b2["details"].lstrip("'"))["formula"] == "=cmd()"
    assert b2["details"].startswith("{")  # JSON starts with {: not a formula, left alone


def test_a_csv_cell_is_never_a_formula(client, factory):
    tenant = factory.tenant()
    _event("test.formula", tenant, target="=HYPERLINK(\"http://evil\")", reason="+1", kind="system", label="system")
    sign_in_staff(client, factory.staff("superadmin"))
    rows = _csv(client.get(f"/admin/audit.csv?tenant={tenant.slug}&action=test.formula"))
    assert rows[0]["target"] == "'=HYPERLINK(\"http://evil\")" and rows[0]["reason"] == "'+1"


def test_a_tenant_export_holds_its_own_events_only(client, factory):
    a, b = factory.tenant(plan="enterprise"), factory.tenant(plan="enterprise")
    admin = factory.admin(a)
    mine = _event("test.own", a, admin.email, kind="tenant_user", details={"note": "mine"})
    ours = _event("test.own", a, "staff@staff.example", details={"server": "placement-7"})
    theirs = _event("test.own", b, f"admin@{b.slug}.example", kind="tenant_user", details={"note": "B's secret"})
    sign_in_tenant(client, a, admin)
    page = client.get(f"/t/{a.slug}/audit?action=test.own").get_data(as_text=True)
    link = re.search(r'id="audit-export" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert link == f"/t/{a.slug}/audit/export.csv?action=test.own"
    for url in (link, f"{link}&tenant={b.slug}", f"{link}&tenant={b.id}", f"{link}&tenant_id={b.id}",
                f"/t/{a.slug}/audit/export.csv"):
        answer = client.get(url)
        text = answer.get_data(as_text=True)
        ids = {int(r["id"]) for r in _csv(answer)}
        assert mine.id in ids and ours.id in ids and theirs.id not in ids, url
        assert b.slug not in text and "B's secret" not in text, url
    rows = {int(r["id"]): r for r in _csv(client.get(link))}
    assert rows[mine.id]["by_our_staff"] == "no" and "mine" in rows[mine.id]["details"]
    assert rows[ours.id]["by_our_staff"] == "yes" and rows[ours.id]["details"] == ""  # our staff's details stay ours
    # B's slug in the path, host or header: never B's log with A's session.
    assert client.get(f"/t/{b.slug}/audit/export.csv").status_code in (302, 404)
    header = client.get(f"/t/{a.slug}/audit/export.csv", headers={"X-Tenant-ID": b.slug})
    assert "B's secret" not in header.get_data(as_text=True)


def test_a_tenant_export_bad_filter_is_400_naming_it(client, factory):
    tenant = factory.tenant(plan="enterprise")
    admin = factory.admin(tenant)
    sign_in_tenant(client, tenant, admin)
    for query, field in (("from=31/12/2026", "from"), ("action=%3Cx%3E", "action"), ("to=abc", "to")):
        answer = client.get(f"/t/{tenant.slug}/audit/export.csv?{query}")
        assert answer.status_code == 400 and answer.get_data(as_text=True).startswith(f"{field}: "), query


def test_without_audit_export_the_link_is_hidden_and_the_export_refused(client, factory):
    tenant = factory.tenant(plan="professional")
    admin = factory.admin(tenant)
    _event("test.own", tenant, admin.email, kind="tenant_user")
    sign_in_tenant(client, tenant, admin)
    page = client.get(f"/t/{tenant.slug}/audit").get_data(as_text=True)
    assert "test.own" in page and 'id="audit-export"' not in page and "export.csv" not in page
    answer = client.get(f"/t/{tenant.slug}/audit/export.csv")
    assert answer.status_code == 403 and answer.mimetype != "text/csv"
    body = answer.get_data(as_text=True)
    assert "Audit log export is not part of your plan" in body and "Enterprise" in body and "test.own" not in body


def test_a_member_without_audit_view_gets_neither(client, factory):
    tenant = factory.tenant(plan="enterprise")
    member = factory.user(tenant)
    sign_in_tenant(client, tenant, member)
    assert client.get(f"/t/{tenant.slug}/audit/export.csv").status_code == 403
