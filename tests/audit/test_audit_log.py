"""The audit log, both faces (issue 14, item 4): details as readable key/value pairs in
the characters they are (escaped, never raw JSON), dates on one line, and a range of
days (`from`, `to`) whose bad values get their message beside the field."""
import re
import uuid
from datetime import datetime, timezone

from portal.extensions import db
from portal.models import AuditEvent
from tests.factories import sign_in_staff, sign_in_tenant


def _event(action, at, tenant_id=None, details=None, kind="staff", label="someone@staff.example"):
    db.session.add(AuditEvent(actor_kind=kind, actor_label=label, tenant_id=tenant_id, action=action,
                              target="t", details=details or {}, occurred_at=at))
    db.session.commit()


def _rows(body):
    return body.split("<tbody>")[1].split("</tbody>")[0]


def _at(day, hour=12):
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=timezone.utc)


DETAILS = {"name": "Ünïcødé", "mark": "✓", "pair": "salt & pepper", "html": "<script>alert(1)</script>",
           "features": {"from": {"analytics": False}, "to": {"analytics": True}}, "until": None,
           "scopes": ["orders.read", "orders.write"]}


def test_staff_audit_shows_details_as_readable_pairs(client, factory):
    sign_in_staff(client, factory.staff("superadmin"))
    action = f"test.details-{uuid.uuid4().hex[:6]}"
    _event(action, _at("2026-03-04", 9), details=DETAILS)
    answer = client.get(f"/admin/audit?action={action}")
    assert answer.status_code == 200
    rows = _rows(answer.get_data(as_text=True))
    assert "\\u" not in rows and "&#34;" not in rows and '{"' not in rows  # not JSON
    assert "<dt>name</dt><dd>Ünïcødé</dd>" in rows and "<dd>✓</dd>" in rows
    assert "<dd>salt &amp; pepper</dd>" in rows
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rows and "<script>" not in rows  # escaped, not |safe
    # Nested values as nested pairs; booleans, none and lists in words.
    assert re.search(r"<dt>features</dt><dd><dl class=\"details\"><dt>from</dt><dd><dl class=\"details\">"
                     r"<dt>analytics</dt><dd>no</dd></dl></dd><dt>to</dt><dd><dl class=\"details\">"
                     r"<dt>analytics</dt><dd>yes</dd>", rows)
    assert "<dd>orders.read, orders.write</dd>" in rows
    assert '<dt>until</dt><dd><span class="muted">none</span></dd>' in rows
    # The date on one line.
    assert '<time class="when" datetime="2026-03-04T09:00:00+00:00">2026-03-04 09:00:00</time>' in rows


def test_staff_audit_filters_by_a_range_of_days(client, factory):
    sign_in_staff(client, factory.staff("superadmin"))
    action = f"test.range-{uuid.uuid4().hex[:6]}"
    for day, hour, target in (("2026-01-31", 23, "jan"), ("2026-02-01", 0, "feb-first"),
                              ("2026-02-28", 23, "feb-last"), ("2026-03-01", 0, "mar")):
        db.session.add(AuditEvent(actor_kind="system", actor_label="system", action=action, target=target,
                                  details={}, occurred_at=_at(day, hour)))
    db.session.commit()

    def targets(query):
        answer = client.get(f"/admin/audit?action={action}&{query}")
        assert answer.status_code == 200, query
        rows = _rows(answer.get_data(as_text=True))
        return {t for t in ("jan", "feb-first", "feb-last", "mar") if f"<td>{t}</td>" in rows}

    # Both ends included, days in UTC.
    assert targets("from=2026-02-01&to=2026-02-28") == {"feb-first", "feb-last"}
    assert targets("from=2026-02-01") == {"feb-first", "feb-last", "mar"}
    assert targets("to=2026-01-31") == {"jan"}
    assert targets("from=2026-02-28&to=2026-02-28") == {"feb-last"}
    assert targets("from=&to=") == {"jan", "feb-first", "feb-last", "mar"}
    assert targets("to=9999-12-31&from=0001-01-01") == {"jan", "feb-first", "feb-last", "mar"}  # the ends of time
    # The pager keeps the range.
    client.application.config["PAGE_SIZE"] = 1
    try:
        body = client.get(f"/admin/audit?action={action}&from=2026-02-01&to=2026-02-28").get_data(as_text=True)
    finally:
        client.application.config["PAGE_SIZE"] = 50
    assert "Page 1 of 2" in body
    assert re.search(r'href="/admin/audit\?[^"]*from=2026-02-01[^"]*page=2', body)
    assert re.search(r'href="/admin/audit\?[^"]*to=2026-02-28', body)


def test_staff_audit_bad_days_are_shown_beside_the_field(client, factory):
    sign_in_staff(client, factory.staff("superadmin"))
    for query, field, message in (
            ("from=abc", "from", "The first day: enter a day as YYYY-MM-DD"),
            ("to=2026-02-30", "to", "The last day: enter a day as YYYY-MM-DD"),
            ("from=0000-01-01", "from", "The first day: enter a day as YYYY-MM-DD"),
            ("from=2026-W05-1", "from", "The first day: enter a day as YYYY-MM-DD"),
            ("from=%D9%A2%D9%A0%D9%A2%D9%A6-01-01", "from", "The first day: enter a day as YYYY-MM-DD"),
            ("from=" + "9" * 500, "from", "The first day: enter a day as YYYY-MM-DD"),
            ("from=2026-03-01&to=2026-02-01", "to", "The last day comes on or after the first day.")):
        answer = client.get(f"/admin/audit?{query}")
        assert answer.status_code == 400, query
        body = answer.get_data(as_text=True)
        assert f'<p class="error" id="audit-{field}-error">{message}' in body, query
        field_input = re.search(rf'<input[^>]*id="audit-{field}"[^>]*>', body).group(0)
        assert 'aria-invalid="true"' in field_input and f'aria-describedby="audit-{field}-error"' in field_input
    body = client.get("/admin/audit?from=abc&to=2026-02-01").get_data(as_text=True)
    assert 'value="abc"' in body and 'value="2026-02-01"' in body  # the input is kept


def test_tenant_audit_reads_details_and_filters_by_days(client, factory):
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    _event("test.mine", _at("2026-02-10"), tenant.id, {"name": "Ünïcødé ✓ & co"}, kind="tenant_user",
           label=admin.email)
    _event("test.staffs", _at("2026-03-10"), tenant.id, {"where": "silo on placement-7"})
    sign_in_tenant(client, tenant, admin)
    prefix = f"/t/{tenant.slug}"
    rows = _rows(client.get(f"{prefix}/audit?from=2026-02-01&to=2026-03-31").get_data(as_text=True))
    assert "<dt>name</dt><dd>Ünïcødé ✓ &amp; co</dd>" in rows and "\\u" not in rows
    assert "test.staffs" in rows and "placement-7" not in rows  # our staff's details stay ours
    assert '<time class="when" datetime="2026-02-10T12:00:00+00:00">2026-02-10 12:00:00</time>' in rows
    rows = _rows(client.get(f"{prefix}/audit?from=2026-03-01&to=2026-03-31").get_data(as_text=True))
    assert "test.staffs" in rows and "test.mine" not in rows
    rows = _rows(client.get(f"{prefix}/audit?to=2026-02-28").get_data(as_text=True))
    assert "test.mine" in rows and "test.staffs" not in rows
    answer = client.get(f"{prefix}/audit?from=2026-03-01&to=2026-02-01")
    assert answer.status_code == 400
    body = answer.get_data(as_text=True)
    assert '<p class="error" id="audit-to-error">The last day comes on or after the first day.</p>' in body
    assert client.get(f"{prefix}/audit?to=31/12/2026").status_code == 400
