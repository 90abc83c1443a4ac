"""B's events never show in A's dashboard, CSV, cache or staff view, in every tier; the
staff overview and the staff view of a tenant's dashboard (audited)."""
from datetime import datetime, timezone

from sqlalchemy import select

from portal.analytics import services
from portal.analytics.events import store
from portal.extensions import db
from portal.models import AuditEvent
from portal.services import cache
from portal.tenancy.context import tenant_context
from portal.tenancy.data import EventActiveDay, EventUser
from portal.tenancy.placement import tenant_session
from tests.factories import sign_in_staff, sign_in_tenant
from tests.isolation.conftest import TIER_SPECS


def test_each_tenant_sees_only_its_own_events_in_every_tier(client, factory, make_tiered):
    tenants = {spec: make_tiered(tier, placement, plan="enterprise") for spec, (tier, placement) in TIER_SPECS.items()}
    now = datetime.now(timezone.utc)
    for tenant in tenants.values():
        with tenant_context(tenant):
            store([{"name": f"secret-{tenant.slug}", "user_key": f"user-{tenant.slug}",
                    "properties": {"k": f"value-{tenant.slug}"}, "occurred_at": now}])
    for spec, tenant in tenants.items():
        others = [t.slug for t in tenants.values() if t.slug != tenant.slug]
        report = services.read_report(tenant, {"event": f"secret-{tenant.slug}", "property": "k"})
        data, _ = services.results(tenant, report)
        assert [r["name"] for r in data["by_name"]] == [f"secret-{tenant.slug}"], spec
        assert data["totals"]["users"] == 1 and data["breakdown"][0]["value"] == f"value-{tenant.slug}"
        cached, hit = services.results(tenant, report)
        assert hit and cached["by_name"] == data["by_name"]
        admin = factory.admin(tenant)
        sign_in_tenant(client, tenant, admin)
        for url in (f"/t/{tenant.slug}/analytics?event=secret-{tenant.slug}&property=k",
                    f"/t/{tenant.slug}/analytics/export.csv?table=events"):
            body = client.get(url).get_data(as_text=True)
            assert f"secret-{tenant.slug}" in body
            assert not any(slug in body for slug in others), (spec, url)
        with tenant_session(tenant) as session:
            keys = set(session.execute(select(EventUser.user_key)).scalars())
        assert keys == {f"user-{tenant.slug}", str(admin.id)}  # its own user, and its admin's sign-in
        with tenant_session(tenant) as session:  # the active users its views kept: its own alone
            kept = session.execute(select(EventActiveDay.tenant_id, EventActiveDay.dau)
                                   .where(EventActiveDay.day == now.date())).all()
        assert kept == [(tenant.id, 2)], spec  # the same two users
    # Every tenant's cache is its own: clearing one leaves the others.
    first, *rest = tenants.values()
    cache.clear(first.id)
    assert cache.stats(first.id)["keys"] == 0 and all(cache.stats(t.id)["keys"] >= 1 for t in rest)


def test_staff_view_of_a_tenants_dashboard_is_read_only_and_audited(client, factory):
    a, b = factory.tenant(plan="enterprise"), factory.tenant(plan="enterprise")
    professional = factory.tenant(plan="professional")  # no advanced reports: no CSV, for staff either
    now = datetime.now(timezone.utc)
    for tenant in (a, b):
        with tenant_context(tenant):
            store([{"name": f"only-{tenant.slug}", "user_key": None, "properties": {}, "occurred_at": now}])
    viewer, support = factory.staff("viewer"), factory.staff("support")
    sign_in_staff(client, viewer)
    assert client.get(f"/admin/tenants/{a.id}/analytics").status_code == 403
    overview = client.get("/admin/analytics")
    assert overview.status_code == 200 and f"/admin/tenants/{a.id}" in overview.get_data(as_text=True)
    client.post("/admin/logout", data={})
    sign_in_staff(client, support)
    page = client.get(f"/admin/tenants/{a.id}/analytics")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and f"only-{a.slug}" in body and f"only-{b.slug}" not in body
    csv = client.get(f"/admin/tenants/{a.id}/analytics/export.csv?table=events").get_data(as_text=True)
    assert f"only-{a.slug}" in csv and f"only-{b.slug}" not in csv
    assert client.get(f"/admin/tenants/{professional.id}/analytics/export.csv?table=events").status_code == 404
    reads = db.session.query(AuditEvent).filter_by(action="tenant.analytics_viewed", tenant_id=a.id).all()
    assert {e.details["what"] for e in reads} == {"dashboard", "csv"} and all(e.actor_label == support.email
                                                                              for e in reads)


def test_the_overview_counts_activity_across_tenants(client, factory):
    a, b = factory.tenant(plan="professional"), factory.tenant(plan="basic")
    now = datetime.now(timezone.utc)
    with tenant_context(a):
        store([{"name": "x", "user_key": None, "properties": {}, "occurred_at": now}] * 5)
    with tenant_context(b):
        store([{"name": "x", "user_key": None, "properties": {}, "occurred_at": now}] * 2)
    from portal.analytics.overview import overview

    data = overview()
    today = data["days"][-1]
    assert today["active"] >= 2 and today["events"] >= 7
    top = [r["slug"] for r in data["top_activity"]]
    assert top.index(a.slug) < top.index(b.slug)
    assert dict(data["by_plan"])["professional"] >= 1
