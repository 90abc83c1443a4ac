"""The dashboard's numbers against plain SQL over the raw events, late events included;
plan gating; bad input; retention; the cache; Redis down; the portal's own events."""
import random
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlencode

import pytest
import redis as redis_lib
from sqlalchemy import text

from portal.analytics import queries, retention, services
from portal.analytics.events import store
from portal.lifecycle.fences import Fence
from portal.models import AuditEvent, TenantActivityDay
from portal.services import cache, metering
from portal.tenancy.context import tenant_context
from portal.tenancy.placement import qualified_table, tenant_session
from tests.factories import auth, make_token, sign_in_staff, sign_in_tenant

TODAY = datetime.now(timezone.utc).date()


def _at(day, hour=12):
    return datetime.combine(day, time(hour), timezone.utc)


def _rows(n, seed=7, days=40, users=60, names=("view", "click", "buy")):
    rnd = random.Random(seed)
    return [{"name": rnd.choice(names), "user_key": None if rnd.random() < 0.1 else f"u{rnd.randrange(users)}",
             "properties": {"colour": rnd.choice(["red", "blue"])},
             "occurred_at": _at(TODAY - timedelta(days=rnd.randrange(days)), rnd.randrange(24))} for _ in range(n)]


def _raw(tenant, start, end):
    """Per name: (events, unique users) by plain SQL over the events."""
    with tenant_session(tenant) as session:
        return {name: (n, users) for name, n, users in session.execute(text(
            f"select name, count(*), count(distinct user_key) from {qualified_table(session, 'events')} "
            "where occurred_at >= :a and occurred_at < :b and name not like 'portal.%' group by name"),
            {"a": _at(start, 0), "b": _at(end + timedelta(days=1), 0)})}


def _raw_users(tenant, start, end):
    with tenant_session(tenant) as session:
        return session.execute(text(
            f"select count(distinct user_key) from {qualified_table(session, 'events')} "
            "where occurred_at >= :a and occurred_at < :b"),
            {"a": _at(start, 0), "b": _at(end + timedelta(days=1), 0)}).scalar()


def test_counts_and_unique_users_match_raw_sql(factory):
    tenant = factory.tenant(plan="professional")
    rows = _rows(1500)
    with tenant_context(tenant):
        for i in range(0, len(rows), 500):
            store(rows[i:i + 500])
        # Late events: days already counted get more (a user seen before, a new one).
        store([{"name": "view", "user_key": "u1", "properties": {}, "occurred_at": _at(TODAY - timedelta(days=20))},
               {"name": "view", "user_key": "late", "properties": {}, "occurred_at": _at(TODAY - timedelta(days=20))}])
    for start, end in [(TODAY - timedelta(days=29), TODAY), (TODAY - timedelta(days=6), TODAY),
                       (TODAY - timedelta(days=20), TODAY - timedelta(days=20)), (TODAY - timedelta(days=39), TODAY)]:
        data = queries.dashboard(tenant, start, end)
        shown = {r["name"]: (r["events"], r["users"]) for r in data["by_name"] if not r["name"].startswith("portal.")}
        assert shown == _raw(tenant, start, end), (start, end)
        assert data["totals"]["users"] == _raw_users(tenant, start, end)
    _assert_daily_matches_raw_sql(tenant, queries.dashboard(tenant, TODAY - timedelta(days=9), TODAY))


def _assert_daily_matches_raw_sql(tenant, data):
    for row in data["daily"]:
        day = date.fromisoformat(row["day"])
        assert row["dau"] == _raw_users(tenant, day, day), row
        assert row["wau"] == _raw_users(tenant, day - timedelta(days=6), day), row
        assert row["mau"] == _raw_users(tenant, day - timedelta(days=29), day), row
        with tenant_session(tenant) as session:
            assert row["events"] == session.execute(text(
                f"select count(*) from {qualified_table(session, 'events')} "
                "where occurred_at >= :a and occurred_at < :b"),
                {"a": _at(day, 0), "b": _at(day + timedelta(days=1), 0)}).scalar(), row


def _kept_days(tenant):
    with tenant_session(tenant) as session:
        return set(session.execute(text(f"select day from {qualified_table(session, 'event_active_days')}")).scalars())


def test_active_users_kept_per_day_stay_exact_as_new_and_late_events_arrive(factory, monkeypatch):
    tenant = factory.tenant(plan="professional")
    start = TODAY - timedelta(days=39)
    with tenant_context(tenant):
        store(_rows(1200))
    worked_out, work_out = [], queries._work_out
    monkeypatch.setattr(queries, "_work_out", lambda session, days: worked_out.append(days) or work_out(session, days))
    # First view: every day worked out over one grid of days, and kept.
    _assert_daily_matches_raw_sql(tenant, queries.dashboard(tenant, start, TODAY))
    assert worked_out == [[start + timedelta(days=n) for n in range(40)]]
    assert _kept_days(tenant) == {start + timedelta(days=n) for n in range(40)}
    # Kept: the next view works nothing out.
    queries.dashboard(tenant, start, TODAY)
    assert len(worked_out) == 1
    # A late event (a new user, 3 days ago): its day and the days after it (their 30 days
    # hold it) are worked out again, one by one; the rest stay kept.
    late = TODAY - timedelta(days=3)
    with tenant_context(tenant):
        store([{"name": "view", "user_key": "late-3", "properties": {}, "occurred_at": _at(late)}])
    assert _kept_days(tenant) == {start + timedelta(days=n) for n in range(36)}
    _assert_daily_matches_raw_sql(tenant, queries.dashboard(tenant, start, TODAY))
    assert worked_out[-1] == [late + timedelta(days=n) for n in range(4)]
    # Later still (25 days ago, a user seen before and a new one): 26 days, over the grid.
    late = TODAY - timedelta(days=25)
    with tenant_context(tenant):
        store([{"name": "buy", "user_key": "u3", "properties": {}, "occurred_at": _at(late)},
               {"name": "buy", "user_key": "late-25", "properties": {}, "occurred_at": _at(late)}])
    _assert_daily_matches_raw_sql(tenant, queries.dashboard(tenant, start, TODAY))
    assert worked_out[-1] == [late + timedelta(days=n) for n in range(26)]
    # What is kept is what working out again from nothing gives.
    kept = queries.dashboard(tenant, start, TODAY)["daily"]
    with tenant_session(tenant) as session:
        session.execute(text("delete from tenant_data.event_active_days"))
        session.commit()
    assert queries.dashboard(tenant, start, TODAY)["daily"] == kept


def _kept_spans(tenant):
    with tenant_session(tenant) as session:
        return set(session.execute(text(
            f"select first_day, days from {qualified_table(session, 'event_spans')}")).all())


def _assert_names_match_raw_sql(tenant, start, end):
    data = queries.dashboard(tenant, start, end)
    shown = {r["name"]: (r["events"], r["users"]) for r in data["by_name"] if not r["name"].startswith("portal.")}
    assert shown == _raw(tenant, start, end), (start, end)
    assert data["totals"]["users"] == _raw_users(tenant, start, end), (start, end)
    assert data["totals"]["events"] == sum(r["events"] for r in data["by_name"])


@pytest.mark.parametrize("length", [1, 2, 3, 7, 40, 90, 365])
def test_a_range_is_covered_by_aligned_runs_and_its_open_days_one_by_one(length):
    end = TODAY - timedelta(days=length % 5)  # some ranges end before the open days, some in them
    start = end - timedelta(days=length - 1)
    spans, singles = queries._cover(start, end)
    covered = sorted([first + timedelta(days=n) for first, size in spans for n in range(size)] + singles)
    assert covered == [start + timedelta(days=n) for n in range(length)]  # each day once
    for first, size in spans:
        assert size in (2, 4, 8, 16, 32, 64) and (first - queries.EPOCH).days % size == 0
        assert first + timedelta(days=size - 1) < TODAY - timedelta(days=queries.OPEN_DAYS - 1)
    assert set(singles) >= {d for d in covered if d > TODAY - timedelta(days=queries.OPEN_DAYS)}
    if length == 90:
        assert len(spans) + len(singles) <= 16  # not 90 days' bitmaps a name and block


def test_runs_of_days_kept_stay_exact_as_late_events_arrive(factory):
    tenant = factory.tenant(plan="professional")
    start = TODAY - timedelta(days=39)
    with tenant_context(tenant):
        store(_rows(1200))
    _assert_names_match_raw_sql(tenant, start, TODAY)
    spans, _ = queries._cover(start, TODAY)
    assert _kept_spans(tenant) == set(spans) and spans
    # A late event in a kept run: the runs holding its day go, the others stay.
    late = TODAY - timedelta(days=20)
    with tenant_context(tenant):
        store([{"name": "click", "user_key": "late-20", "properties": {}, "occurred_at": _at(late)},
               {"name": "view", "user_key": "u5", "properties": {}, "occurred_at": _at(late)}])
    assert _kept_spans(tenant) == {(first, size) for first, size in spans
                                   if not first <= late < first + timedelta(days=size)}
    with tenant_session(tenant) as session:  # a run gone is seen by the statement that would read it
        assert queries._by_name(session, *queries._cover(start, TODAY)) is None
    for first, last in [(start, TODAY), (late - timedelta(days=5), late + timedelta(days=9)), (late, late),
                        (start, TODAY - timedelta(days=10)), (start + timedelta(days=1), TODAY - timedelta(days=1))]:
        _assert_names_match_raw_sql(tenant, first, last)
    # What is kept is what working out again from nothing gives.
    kept = queries.dashboard(tenant, start, TODAY)
    with tenant_session(tenant) as session:
        session.execute(text("delete from tenant_data.event_spans"))
        session.commit()
    assert queries.dashboard(tenant, start, TODAY) == kept


def test_a_batch_landing_between_the_first_read_and_the_lock_is_seen(factory, monkeypatch):
    tenant = factory.tenant(plan="professional")
    start = TODAY - timedelta(days=39)
    with tenant_context(tenant):
        store(_rows(600))
    queries.dashboard(tenant, start, TODAY)  # everything kept
    with tenant_context(tenant):  # today's active users forgotten: the next view takes the lock
        store([{"name": "view", "user_key": "u1", "properties": {}, "occurred_at": _at(TODAY)}])
    lock = queries.lock_analytics

    def a_late_batch_first(session, tenant_id):
        monkeypatch.setattr(queries, "lock_analytics", lock)
        with tenant_context(tenant):  # it forgets a kept run and kept days the first read saw
            store([{"name": "late", "user_key": "late-20", "properties": {},
                    "occurred_at": _at(TODAY - timedelta(days=20))}])
        lock(session, tenant_id)

    monkeypatch.setattr(queries, "lock_analytics", a_late_batch_first)
    data = queries.dashboard(tenant, start, TODAY)
    assert queries.lock_analytics is lock  # the late batch did land in between
    shown = {r["name"]: (r["events"], r["users"]) for r in data["by_name"] if not r["name"].startswith("portal.")}
    assert shown == _raw(tenant, start, TODAY) and shown["late"] == (1, 1)
    _assert_daily_matches_raw_sql(tenant, data)


def test_a_tenant_whose_writes_are_refused_is_shown_its_numbers_and_nothing_is_kept(app, make_tiered):
    tenant = make_tiered("bridge", plan="professional")
    start = TODAY - timedelta(days=39)
    with tenant_context(tenant):
        store(_rows(600))
    fence = Fence(tenant, app.config["DATABASE_URL"])
    fence.install("frozen")  # as in a move's freeze: every write refused
    try:
        data = queries.dashboard(tenant, start, TODAY)
        _assert_daily_matches_raw_sql(tenant, data)
        shown = {r["name"]: (r["events"], r["users"]) for r in data["by_name"]}
        assert shown == _raw(tenant, start, TODAY)
        assert _kept_days(tenant) == set() and _kept_spans(tenant) == set()
    finally:
        fence.remove()
        fence.close()
    assert queries.dashboard(tenant, start, TODAY) == data
    assert len(_kept_days(tenant)) == 40 and _kept_spans(tenant)


def test_hours_funnel_and_breakdown_match_raw_sql(factory):
    tenant = factory.tenant(plan="enterprise")
    yesterday = TODAY - timedelta(days=1)
    with tenant_context(tenant):
        store([{"name": "view", "user_key": "a", "properties": {"src": "ad"}, "occurred_at": _at(yesterday, 9)},
               {"name": "cart", "user_key": "a", "properties": {}, "occurred_at": _at(yesterday, 10)},
               {"name": "buy", "user_key": "a", "properties": {}, "occurred_at": _at(yesterday, 11)},
               {"name": "view", "user_key": "b", "properties": {"src": "mail"}, "occurred_at": _at(yesterday, 9)},
               {"name": "buy", "user_key": "b", "properties": {}, "occurred_at": _at(yesterday, 8)},  # before: no
               {"name": "view", "user_key": "c", "properties": {"src": "ad"}, "occurred_at": _at(yesterday, 9)},
               {"name": "cart", "user_key": "c", "properties": {}, "occurred_at": _at(yesterday, 10)}])
    data = queries.dashboard(tenant, yesterday, yesterday)
    nine = next(h for h in data["hourly"] if h["hour"].endswith("09:00"))
    assert (nine["events"], nine["users"]) == (3, 3) and len(data["hourly"]) == 24
    steps = queries.funnel(tenant, yesterday, yesterday, ["view", "cart", "buy"], 7)
    assert [s["users"] for s in steps] == [3, 2, 1]
    split = {r["value"]: (r["events"], r["users"]) for r in queries.breakdown(tenant, yesterday, yesterday,
                                                                              "view", "src")}
    assert split == {"ad": (2, 2), "mail": (1, 1)}


def _page(client, tenant, **args):
    return client.get(f"/t/{tenant.slug}/analytics?{urlencode(args)}")


def test_plans_gate_the_dashboard_and_the_advanced_reports(client, factory):
    basic, pro, ent = (factory.tenant(plan=p) for p in ("basic", "professional", "enterprise"))
    for tenant, status in ((basic, 403), (pro, 200), (ent, 200)):
        admin = factory.admin(tenant)
        sign_in_tenant(client, tenant, admin)
        page = _page(client, tenant, steps="portal.signed_in,portal.signed_in")
        assert page.status_code == status
        body = page.get_data(as_text=True)
        if tenant is pro:
            assert 'id="funnel"' not in body and "advanced reports" in body
            assert client.get(f"/t/{pro.slug}/analytics/export.csv?table=daily").status_code == 403
        if tenant is ent:
            assert 'id="funnel"' in body and "chart-funnel" in body
            csv = client.get(f"/t/{ent.slug}/analytics/export.csv?table=events")
            assert csv.status_code == 200 and csv.mimetype == "text/csv"
            assert csv.get_data(as_text=True).splitlines()[0] == "name,events,users"
            assert "portal.signed_in,1,1" in csv.get_data(as_text=True)
            bad = client.get(f"/t/{ent.slug}/analytics/export.csv?table=secrets")
            assert bad.status_code == 400 and "table" in bad.get_data(as_text=True)


@pytest.mark.parametrize("args, field, message", [
    ({"start": "yesterday"}, "start", "YYYY-MM-DD"),
    ({"start": (TODAY - timedelta(days=800)).isoformat()}, "start", "kept 730 days"),
    ({"start": (TODAY + timedelta(days=2)).isoformat()}, "start", "at the latest"),
    ({"end": (TODAY + timedelta(days=3)).isoformat()}, "end", "today"),
    ({"end": "2000-01-01"}, "end", "kept 730 days"),
    ({"start": TODAY.isoformat(), "end": (TODAY - timedelta(days=3)).isoformat()}, "end", "on or after"),
    ({"steps": "view,buy", "window": "\u00b2"}, "window", "1 to 90 days"),
    ({"steps": "view,b\u200buy"}, "steps", "event names"),
    ({"steps": "view"}, "steps", "2 to 4"),
    ({"event": "vi\u200bew", "property": "plan"}, "event", "printable"),
    ({"event": "view"}, "property", "Name the property"),
])
def test_a_bad_range_or_report_is_named_beside_its_field(client, factory, args, field, message):
    tenant = factory.tenant(plan="enterprise")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    page = _page(client, tenant, **args)
    body = page.get_data(as_text=True)
    assert page.status_code == 400 and f'id="{field}-error"' in body and message in body
    assert 'id="total-events"' in body  # the rest of the page still shows, on the default range


@pytest.mark.parametrize("event, field", [
    ({"name": "x", "colour": "red"}, "events[0].colour"),
    ({"name": "portal.signed_in"}, "events[0].name"),
    ({"name": "x", "properties": {"deep": {"a": 1}}}, "events[0].properties.deep"),
    ({"name": "x", "properties": {"long": "y" * 501}}, "events[0].properties.long"),
    ({"name": "x", "user_id": ["a"]}, "events[0].user_id"),
    ({"name": "x", "occurred_at": (TODAY - timedelta(days=45)).isoformat()}, "events[0].occurred_at"),
    # Basic keeps 30 days: today and the 29 before; the 30th day back is already gone.
    ({"name": "x", "occurred_at": _at(TODAY - timedelta(days=30), 23).isoformat()}, "events[0].occurred_at"),
    ({"name": "x" * 81}, "events[0].name"),
])
def test_bad_events_refuse_the_batch_naming_the_field(client, factory, event, field):
    tenant = factory.tenant(plan="basic")  # keeps events 30 days
    token = make_token(tenant, factory.admin(tenant))
    response = client.post("/api/v1/events", json={"events": [{"name": "fine"}, event]}, headers=auth(token))
    assert response.status_code == 400, response.json
    assert response.json["error"]["field"] == field.replace("[0]", "[1]")
    with tenant_session(tenant) as session:
        assert session.execute(text("select count(*) from tenant_data.events where name = 'fine'")).scalar() == 0


def test_a_batch_over_the_limit_is_refused(client, factory):
    tenant = factory.tenant(plan="professional")
    token = make_token(tenant, factory.admin(tenant))
    response = client.post("/api/v1/events", json={"events": [{"name": "x"}] * 1001}, headers=auth(token))
    assert response.status_code == 400 and response.json["error"]["field"] == "events"


def test_retention_removes_old_events_their_rollups_and_the_active_users_they_counted(factory):
    tenant = factory.tenant(plan="basic")  # 30 days
    with tenant_context(tenant):
        store([{"name": "old", "user_key": "u", "properties": {}, "occurred_at": _at(TODAY - timedelta(days=31))},
               {"name": "edge", "user_key": "u", "properties": {}, "occurred_at": _at(TODAY - timedelta(days=29))},
               {"name": "new", "user_key": "u", "properties": {}, "occurred_at": _at(TODAY)}])
    month = (TODAY - timedelta(days=31), TODAY)
    queries.dashboard(tenant, *month)  # keeps the days' active users
    assert retention.expire_tenant(tenant) == (1, 2)  # its roll-up, and the day's every-event one
    # The days whose 30 days held the expired one are worked out again: the numbers are
    # those of the events kept.
    assert _kept_days(tenant) == {TODAY}
    assert _kept_spans(tenant) and all(first >= TODAY - timedelta(days=29) for first, _ in _kept_spans(tenant))
    _assert_daily_matches_raw_sql(tenant, queries.dashboard(tenant, *month))
    _assert_names_match_raw_sql(tenant, *month)
    with tenant_session(tenant) as session:
        names = set(session.execute(text("select name from tenant_data.events")).scalars())
        days = set(session.execute(text("select day from tenant_data.event_rollups")).scalars())
    assert "old" not in names and {"edge", "new"} <= names
    assert min(days) == TODAY - timedelta(days=29)
    assert retention.expire_tenant(tenant) == (0, 0)


def test_repeated_views_come_from_the_cache_until_new_events(client, factory):
    tenant = factory.tenant(plan="professional")
    sign_in_tenant(client, tenant, factory.admin(tenant))
    first = _page(client, tenant).get_data(as_text=True)
    assert 'id="cache-note"' not in first
    second = _page(client, tenant).get_data(as_text=True)
    assert 'id="cache-note"' in second
    token = make_token(tenant, factory.admin(tenant))  # a portal event: stale at once
    client.post("/api/v1/events", json={"events": [{"name": "fresh"}]}, headers=auth(token))
    third = _page(client, tenant).get_data(as_text=True)
    assert 'id="cache-note"' not in third and ">fresh<" in third
    assert cache.stats(tenant.id)["keys"] >= 1


def test_staff_clear_a_tenants_cache_audited(client, factory, app):
    tenant = factory.tenant(plan="professional")
    report = services.read_report(tenant, {})
    services.results(tenant, report)
    assert cache.stats(tenant.id)["keys"] == 1
    staff = factory.staff("operator")
    sign_in_staff(client, staff)
    detail = client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True)
    assert 'id="cache-keys">1<' in detail
    token = detail.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post(f"/admin/tenants/{tenant.id}/cache/clear", data={"csrf_token": token})
    assert cache.stats(tenant.id)["keys"] == 0
    from portal.extensions import db

    assert db.session.query(AuditEvent).filter_by(action="tenant.cache_cleared", tenant_id=tenant.id).count() == 1


def test_redis_down_the_dashboard_answers_from_the_database(client, factory, app, monkeypatch):
    tenant = factory.tenant(plan="professional")
    with tenant_context(tenant):
        store([{"name": "seen", "user_key": "u", "properties": {}, "occurred_at": _at(TODAY)}])
    sign_in_tenant(client, tenant, factory.admin(tenant))
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, decode_responses=True)
    monkeypatch.setitem(app.extensions, "portal.redis", dead)
    page = _page(client, tenant)
    assert page.status_code == 200 and ">seen<" in page.get_data(as_text=True)
    with pytest.raises(redis_lib.RedisError):
        cache.stats(tenant.id)


def test_the_portal_records_its_own_activity(client, factory):
    tenant = factory.tenant(plan="professional")
    admin = factory.admin(tenant)
    sign_in_tenant(client, tenant, admin)
    make_token(tenant, admin)
    with tenant_session(tenant) as session:
        found = dict(session.execute(text("select name, user_key from tenant_data.events")).all())
    assert found["portal.signed_in"] == str(admin.id) and "portal.token_created" in found
    from portal.extensions import db

    counted = db.session.query(TenantActivityDay).filter_by(tenant_id=tenant.id, day=TODAY).one()
    assert counted.events >= 2


def test_a_change_while_computing_leaves_the_entry_stale(factory):
    tenant = factory.tenant(plan="professional")

    def compute():
        cache.touch(tenant.id)  # new events arrive while the result is being computed
        return {"n": 1}

    assert cache.cached(tenant.id, "race", 60, compute) == ({"n": 1}, False)
    assert cache.get(tenant.id, "race") is None
    assert cache.cached(tenant.id, "race", 60, lambda: {"n": 2}) == ({"n": 2}, False)
    assert cache.cached(tenant.id, "race", 60, lambda: {"n": 3}) == ({"n": 2}, True)


def test_the_daily_expiry_job_runs_and_schedules_the_next(factory, run_jobs):
    from portal.extensions import db
    from portal.models import Job

    tenant = factory.tenant(plan="basic")
    with tenant_context(tenant):
        store([{"name": "old", "user_key": None, "properties": {}, "occurred_at": _at(TODAY - timedelta(days=40))}])
    # A worker started by another test (the browser suite's) may have scheduled one already.
    db.session.query(Job).filter_by(kind=retention.JOB_KIND, state="queued").delete()
    first = retention.schedule()
    assert retention.schedule() is None  # one waits already
    run_jobs()
    db.session.refresh(first)
    assert first.state == "succeeded" and first.result["events"] >= 1 and first.result["failed"] == []
    waiting = db.session.query(Job).filter_by(kind=retention.JOB_KIND, state="queued").all()
    assert len(waiting) == 1  # tomorrow's
    with tenant_session(tenant) as session:
        assert session.execute(text("select count(*) from tenant_data.events where name = 'old'")).scalar() == 0


def test_a_lost_cache_version_starts_a_new_epoch(factory, redis_client, servers):
    tenant = factory.tenant(plan="professional")
    cache.set(tenant.id, "x", {"n": 1}, 60)
    assert cache.get(tenant.id, "x") == {"n": 1}
    redis_client.delete(f"{servers.redis_prefix}:t:{{{tenant.id}}}:cache-version")  # evicted
    assert cache.get(tenant.id, "x") is None  # not served again under a version restarted at 0


def test_csv_cells_a_spreadsheet_would_run_are_quoted():
    from portal.services.csv_export import safe_cell  # the one home of CSV writing

    assert [safe_cell(v) for v in ("=1+1", "+1", "-1", "@x", "\tx", "\rx", "fine", 3)] == [
        "'=1+1", "'+1", "'-1", "'@x", "'\tx", "'\rx", "fine", 3]


@pytest.mark.parametrize("tier", ["pool", "bridge"])
def test_what_dashboards_keep_is_not_counted_as_the_tenants_storage(make_tiered, tier):
    tenant = make_tiered(tier, plan="professional")
    with tenant_context(tenant):
        store(_rows(300))
    before = metering.measure_storage(tenant)
    queries.dashboard(tenant, TODAY - timedelta(days=39), TODAY)
    assert _kept_days(tenant) and _kept_spans(tenant)
    assert metering.measure_storage(tenant) == before
