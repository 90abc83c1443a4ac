"""Per-tenant rate limits: requests a minute (exact under concurrency) and API calls a
day (429 JSON with Retry-After and X-RateLimit-* headers; the UTC day's boundary)."""
import re
import threading
import uuid
from datetime import datetime, timezone

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from portal.metrics import RATE_LIMIT_UNCHECKED, CountingRedis, SentCommand
from portal.services import entitlements, ratelimit
from portal.services.keys import tenant_key
from portal.tenancy.placement import RequestConnection
from tests.factories import sign_in_tenant
from tests.quotas.conftest import fresh_minute, plan

THREADS, CALLS = 8, 50


def test_exactly_the_limit_is_admitted_under_concurrency(app, factory, override, redis_client):
    tenant = factory.tenant(plan="basic")  # 300 a minute; set to 100 for this tenant
    override(tenant, "limit:requests_per_minute", "100")
    limit = entitlements.for_tenant(tenant.id, "basic").limit("requests_per_minute")
    assert limit == 100
    # A fixed moment (a minute of the year 2100), so all 400 calls fall in one window and
    # no real request of the test counts in it.
    now = 4_102_444_800 + 30
    window, _ = ratelimit.minute_window(now)
    start = threading.Barrier(THREADS)
    results, errors = [], []

    def worker():
        try:
            with app.app_context():
                start.wait()
                mine = [ratelimit.requests_this_minute(tenant.id, limit, now=now) for _ in range(CALLS)]
            results.extend(mine)
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(results) == THREADS * CALLS
    assert sum(d.allowed for d in results) == 100
    assert not any(d.degraded for d in results)
    # Each call got a count of its own: 1..400, no lost or doubled increment.
    assert sorted(d.count for d in results) == list(range(1, THREADS * CALLS + 1))
    assert {d.count for d in results if d.allowed} == set(range(1, 101))
    assert int(redis_client.get(tenant_key(tenant.id, "rpm", window))) == THREADS * CALLS


def test_request_over_the_minute_limit_gets_429_page(client, factory, override, redis_client):
    tenant, quiet = factory.tenant(), factory.tenant()
    override(tenant, "limit:requests_per_minute", "5")
    fresh_minute()
    for n in range(5):
        assert client.get(f"/t/{tenant.slug}/login").status_code == 200, n
    refused = client.get(f"/t/{tenant.slug}/login")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    body = refused.get_data(as_text=True)
    assert "Too many requests" in body and "5 requests a minute" in body
    assert refused.mimetype == "text/html"
    assert "X-Accel-Expires" not in refused.headers  # (made in a request: a front's cache must not keep it)
    # Further requests of that minute are refused before the app runs (cheap for the
    # neighbours), still with Retry-After; they are not counted again.
    counted = redis_client.get(rpm_key(tenant))
    early = client.get(f"/t/{tenant.slug}/orders")
    assert early.status_code == 429 and early.mimetype == "text/html"  # the same styled page, answered early
    assert "Too many requests" in early.get_data(as_text=True) and "portal.css" in early.get_data(as_text=True)
    assert 1 <= int(early.headers["Retry-After"]) <= 60
    assert early.headers["X-Accel-Expires"] == "1"  # nginx may repeat it for a second (deploy/nginx/)
    assert redis_client.get(rpm_key(tenant)) == counted
    # The flooding tenant's limit is its own: another tenant is served.
    assert client.get(f"/t/{quiet.slug}/login").status_code == 200


def test_a_signed_in_flood_is_refused_without_reading_anything(client, factory, override):
    """The early 429 (the resolver's gate) loads no one: a flooding tenant's signed-in
    requests cost its neighbours no statement, only the plain page."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    tenant = factory.tenant()
    user = factory.admin(tenant)
    sign_in_tenant(client, tenant, user)
    override(tenant, "limit:requests_per_minute", "5")
    fresh_minute()
    while client.get(f"/t/{tenant.slug}/orders").status_code != 429:
        pass
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        early = client.get(f"/t/{tenant.slug}/orders")
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    body = early.get_data(as_text=True)
    assert early.status_code == 429 and "5 requests a minute" in body and "portal.css" in body
    assert statements == []
    assert user.email not in body and "with-sidebar" not in body  # the plain layout: it names no one


def test_the_early_429_pages_are_each_tenants_own(app, client, factory, override):
    """The early 429's page is made once and kept, by what is in it: each flooded tenant's
    still names its own limit and links its own prefix's stylesheet, the API's stays JSON,
    and none carries a cookie."""
    a, b = factory.tenant(plan="professional"), factory.tenant(plan="professional")
    override(a, "limit:requests_per_minute", "5")
    override(b, "limit:requests_per_minute", "7")
    fresh_minute()
    for tenant, limit in ((a, 5), (b, 7)):
        while client.get(f"/t/{tenant.slug}/login").status_code != 429:
            pass
        for _ in range(2):  # made, then kept
            page = client.get(f"/t/{tenant.slug}/login")
            body = page.get_data(as_text=True)
            assert page.status_code == 429 and page.mimetype == "text/html" and "Set-Cookie" not in page.headers
            assert f"allows {limit} requests a minute" in body
            assert STYLESHEET.search(body).group(1) == f"/t/{tenant.slug}/static/css/portal.css"
            assert 1 <= int(page.headers["Retry-After"]) <= 60
        api = client.get("/api/v1/status", headers={"X-Tenant-ID": tenant.slug})
        assert api.status_code == 429 and api.is_json
        assert f"allows {limit} requests a minute" in api.get_json()["error"]["message"]


def rpm_key(tenant):
    from portal.services.keys import tenant_key
    from portal.services.ratelimit import minute_window

    return tenant_key(tenant.id, "rpm", minute_window()[0])


def _api(client, tenant):
    return client.get("/api/v1/status", headers={"X-Tenant-ID": tenant.slug})


def test_api_calls_a_day_429_with_headers(client, factory, override):
    # A real basic tenant allows 1,000 API calls a day; the 1,001st is refused by the same
    # code path as the 4th here (enforcement → the day counted with the minute, decided
    # against the plan's limit). The override of 3 keeps the test fast.
    tenant = factory.tenant(plan="basic")
    assert entitlements.for_tenant(tenant.id, "basic").limit("api_calls_per_day") == 1000
    override(tenant, "limit:api_calls_per_day", "3")
    remaining = []
    for _ in range(3):
        answer = _api(client, tenant)
        assert answer.status_code == 200
        assert answer.json == {"tenant": tenant.slug, "status": "active"}
        assert answer.headers["X-RateLimit-Limit"] == "3"
        assert int(answer.headers["X-RateLimit-Reset"]) >= 1
        remaining.append(int(answer.headers["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    refused = _api(client, tenant)
    assert refused.status_code == 429
    assert refused.mimetype == "application/json"
    error = refused.json["error"]
    assert error["code"] == 429 and "3 API calls a day (UTC)" in error["message"]
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 86_401
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) == retry
    # Another tenant's calls are counted apart.
    other = factory.tenant(plan="basic")
    assert _api(client, other).headers["X-RateLimit-Remaining"] == "999"


def test_the_api_count_starts_again_at_the_utc_day_boundary(app, conn, factory, redis_client):
    tenant = factory.tenant()
    last_second = datetime(2031, 3, 14, 23, 59, 59, tzinfo=timezone.utc)
    next_day = datetime(2031, 3, 15, 0, 0, 1, tzinfo=timezone.utc)
    assert ratelimit.day_window(last_second) == ("20310314", 1)
    first = ratelimit.api_call_today(tenant.id, 2, now=last_second)
    second = ratelimit.api_call_today(tenant.id, 2, now=last_second)
    third = ratelimit.api_call_today(tenant.id, 2, now=last_second)
    assert (first.count, second.count, third.count) == (1, 2, 3)
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert first.reset_seconds == 1  # one second to midnight UTC
    assert third.reset_seconds == 1
    morning = ratelimit.api_call_today(tenant.id, 2, now=next_day)
    assert morning.count == 1 and morning.allowed and morning.remaining == 1
    assert morning.reset_seconds == 86_399
    # A non-UTC moment is placed by its UTC day.
    assert ratelimit.day_window(next_day)[0] == "20310315"


# Issue 14, items 1 and 2: static files are neither counted nor refused; the web limits
# are a team's; a 429 is a styled page that says when to retry, and JSON on the API.

STATIC = ("css/portal.css", "js/console.js", "js/poll.js", "vendor/chart.js/chart.umd.min.js")
STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+)">')
TRY_AGAIN = re.compile(r"Try again in (\d+) seconds?\.")


def _counted(redis_client, tenant):
    return int(redis_client.get(rpm_key(tenant)) or 0)


def test_static_files_are_neither_counted_nor_refused(client, factory, override, redis_client):
    tenant = factory.tenant()
    override(tenant, "limit:requests_per_minute", "3")
    fresh_minute(15)
    for n in range(20):  # far past the limit of 3
        for path in STATIC:
            assert client.get(f"/t/{tenant.slug}/static/{path}").status_code == 200, (n, path)
    assert _counted(redis_client, tenant) == 0
    for n in range(3):  # the whole budget is still there for pages
        assert client.get(f"/t/{tenant.slug}/login").status_code == 200, n
    assert _counted(redis_client, tenant) == 3
    refused = client.get(f"/t/{tenant.slug}/login")
    assert refused.status_code == 429
    # Refused for the rest of the minute (early, in the middleware): its static files are not.
    early = client.get(f"/t/{tenant.slug}/orders")
    assert early.status_code == 429
    for page in (refused, early):
        href = STYLESHEET.search(page.get_data(as_text=True)).group(1)
        css = client.get(href)
        assert css.status_code == 200 and css.mimetype == "text/css"
    for path in STATIC:
        assert client.get(f"/t/{tenant.slug}/static/{path}").status_code == 200, path
    assert _counted(redis_client, tenant) == 4  # the refused page was counted; no static file was


def test_the_plans_web_limits_are_a_teams(conn, factory):
    # A person browsing briskly loads a page every two seconds: basic's ten users at that
    # pace are 300 a minute; professional's 1,200 are forty people at once (or all hundred
    # users at a page every five seconds). docs/plans-and-limits.md gives the figures.
    figures = {code: (plan(code).max_users, plan(code).requests_per_minute)
               for code in ("basic", "professional", "enterprise")}
    assert figures == {"basic": (10, 300), "professional": (100, 1200), "enterprise": (None, 6000)}
    tenant = factory.tenant(plan="basic")
    assert entitlements.for_tenant(tenant.id, "basic").limit("requests_per_minute") == 300


def test_one_person_browsing_a_basic_tenant_is_not_refused(client, factory, redis_client):
    # The 429 came after 58 page loads when stylesheets were counted against 60 a minute.
    tenant = factory.tenant(plan="basic")
    member = factory.user(tenant)
    fresh_minute(20)
    sign_in_tenant(client, tenant, member)
    pages = ("/", "/orders")
    for n in range(60):
        page = client.get(f"/t/{tenant.slug}{pages[n % len(pages)]}")
        assert page.status_code == 200, n
        for path in STATIC:  # what the browser fetches with each page (were it not cached)
            assert client.get(f"/t/{tenant.slug}/static/{path}").status_code == 200
    assert _counted(redis_client, tenant) == 62  # the sign-in page, its POST and 60 pages: no assets


def test_a_429_is_a_styled_page_that_says_when_to_retry(client, factory, override):
    tenant = factory.tenant()
    member = factory.user(tenant)
    override(tenant, "limit:requests_per_minute", "4")
    fresh_minute(10)
    sign_in_tenant(client, tenant, member)  # 2 requests
    assert client.get(f"/t/{tenant.slug}/").status_code == 200
    assert client.get(f"/t/{tenant.slug}/orders").status_code == 200
    for path in ("/orders", "/", "/login"):  # the refusal, then the early ones of the same minute
        refused = client.get(f"/t/{tenant.slug}{path}")
        assert refused.status_code == 429 and refused.mimetype == "text/html", path
        body = refused.get_data(as_text=True)
        assert body.lstrip().lower().startswith("<!doctype html>")  # the layout, not bare text
        assert STYLESHEET.search(body).group(1) == f"/t/{tenant.slug}/static/css/portal.css"
        assert 'class="card error-page"' in body  # the error template
        retry = int(refused.headers["Retry-After"])
        assert 1 <= retry <= 60
        said = int(TRY_AGAIN.search(body).group(1))
        assert said in (retry, retry - 1, retry + 1), (said, retry)  # the same wait, in words
        assert "4 requests a minute" in body


def test_the_apis_429_stays_json(client, factory, override):
    tenant = factory.tenant()
    override(tenant, "limit:requests_per_minute", "2")
    fresh_minute(10)
    for _ in range(2):
        assert _api(client, tenant).status_code == 200
    for _ in range(2):  # the refusal, then an early one
        refused = _api(client, tenant)
        assert refused.status_code == 429 and refused.mimetype == "application/json"
        error = refused.json["error"]
        assert error["code"] == 429 and "2 requests a minute" in error["message"]
        assert TRY_AGAIN.search(error["message"])
        assert 1 <= int(refused.headers["Retry-After"]) <= 60


def _redis_in_use(app):
    """Connections out of the app's Redis pool (a single server's; a cluster's: 0)."""
    pool = getattr(app.extensions["portal.redis"], "connection_pool", None)
    return len(pool._in_use_connections) if pool is not None else 0


def test_a_script_the_server_does_not_know_is_loaded_and_counted_once(app, client, factory, redis_client):
    tenant = factory.tenant()
    fresh_minute()
    assert client.get(f"/t/{tenant.slug}/login").status_code == 200
    counted = int(redis_client.get(rpm_key(tenant)))
    redis_client.script_flush()  # (as a restarted server would have it)
    unchecked = RATE_LIMIT_UNCHECKED.labels("open")._value.get()
    assert client.get(f"/t/{tenant.slug}/login").status_code == 200
    assert int(redis_client.get(rpm_key(tenant))) == counted + 1  # counted, once
    assert RATE_LIMIT_UNCHECKED.labels("open")._value.get() == unchecked  # and checked, not let through blind
    assert _redis_in_use(app) == 0


def test_connections_the_server_closed_between_requests_are_made_again(app, client, factory, redis_client):
    tenant = factory.tenant()
    fresh_minute()
    assert client.get(f"/t/{tenant.slug}/login").status_code == 200
    counted = int(redis_client.get(rpm_key(tenant)))
    if not isinstance(redis_client, redis.cluster.RedisCluster):
        redis_client.client_kill_filter(_type="normal", skipme=True)  # every pooled connection of the app
    unchecked = RATE_LIMIT_UNCHECKED.labels("open")._value.get()
    assert client.get(f"/t/{tenant.slug}/login").status_code == 200
    assert int(redis_client.get(rpm_key(tenant))) == counted + 1
    assert RATE_LIMIT_UNCHECKED.labels("open")._value.get() == unchecked
    assert _redis_in_use(app) == 0


def test_a_failure_between_the_scripts_sending_and_its_reply_leaves_no_connection_out(app, client, factory,
                                                                                    monkeypatch, redis_client):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    fresh_minute()
    assert client.get(f"/t/{tenant.slug}/orders").status_code == 200
    counted = int(redis_client.get(rpm_key(tenant)))

    def fails(ref):
        raise RuntimeError("failed while the script was on its way")

    monkeypatch.setattr(RequestConnection, "open_early", staticmethod(fails))
    assert client.get(f"/t/{tenant.slug}/orders").status_code == 500
    assert _redis_in_use(app) == 0  # the reply was read, and the connection given back
    assert int(redis_client.get(rpm_key(tenant))) == counted + 1
    monkeypatch.undo()
    assert client.get(f"/t/{tenant.slug}/orders").status_code == 200  # the next request's reply is its own
    assert int(redis_client.get(rpm_key(tenant))) == counted + 2


def test_a_reply_lost_after_the_script_was_sent_is_asked_again_never_let_through(app, client, factory,
                                                                                monkeypatch, redis_client):
    tenant = factory.tenant()
    fresh_minute()
    assert client.get(f"/t/{tenant.slug}/login").status_code == 200
    counted = int(redis_client.get(rpm_key(tenant)))
    reply = SentCommand.reply

    def lost(command):
        command.connection.disconnect()  # (the script ran; its reply will not come)
        return reply(command)

    monkeypatch.setattr(SentCommand, "reply", lost)
    unchecked = RATE_LIMIT_UNCHECKED.labels("open")._value.get()
    assert client.get(f"/t/{tenant.slug}/login").status_code == 200
    sent_early = isinstance(app.extensions["portal.redis"], CountingRedis)
    # asked again the ordinary way: counted twice (stricter), and checked, not let through blind
    assert int(redis_client.get(rpm_key(tenant))) == counted + (2 if sent_early else 1)
    assert RATE_LIMIT_UNCHECKED.labels("open")._value.get() == unchecked
    assert _redis_in_use(app) == 0


def test_a_script_that_could_not_be_sent_degrades_at_once(app, monkeypatch):
    """Redis unreachable: taking a connection already went through the client's retries, so
    the check fails open (the default) without trying it all again the ordinary way."""
    def asked(*args, **kwargs):
        raise AssertionError("asked again the ordinary way")

    nowhere = CountingRedis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5,
                                     retry=Retry(NoBackoff(), 0), decode_responses=True)
    monkeypatch.setitem(app.extensions, "portal.redis", nowhere)
    monkeypatch.setattr(ratelimit, "_script", lambda: type("Script", (), {"sha": "0" * 40, "__call__": asked})())
    with app.app_context():
        decision = ratelimit.requests_this_minute(uuid.uuid4(), 100)
    assert decision.degraded and decision.allowed


# -- an API call's day counted in the minute's round trip ------------------------------------
def _round_trips(monkeypatch):
    """Commands written to Redis, whatever the client (a single server's or a cluster's)."""
    from redis.connection import AbstractConnection

    sent, original = [], AbstractConnection.send_packed_command

    def counted(connection, command, check_health=True):
        sent.append(command)
        return original(connection, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    return sent


def test_an_api_call_makes_one_round_trip_to_redis(app, client, factory, override, monkeypatch, redis_client):
    tenant = factory.tenant(plan="professional")
    override(tenant, "limit:api_calls_per_day", "5")
    fresh_minute()
    assert _api(client, tenant).headers["X-RateLimit-Remaining"] == "4"  # (scripts loaded, caches warm)
    sent = _round_trips(monkeypatch)
    answer = _api(client, tenant)
    assert answer.status_code == 200 and answer.headers["X-RateLimit-Remaining"] == "3"
    assert len(sent) == 1  # the minute, the versions, the fence and the day: one script
    monkeypatch.undo()
    assert int(redis_client.get(tenant_key(tenant.id, "api", ratelimit.day_window()[0]))) == 2


def test_a_request_the_minute_refuses_is_not_counted_as_an_api_call(client, factory, override, redis_client):
    tenant, other = factory.tenant(plan="professional"), factory.tenant(plan="professional")
    override(tenant, "limit:requests_per_minute", "2")
    override(tenant, "limit:api_calls_per_day", "10")
    fresh_minute()
    day_key = tenant_key(tenant.id, "api", ratelimit.day_window()[0])
    assert [_api(client, tenant).status_code for _ in range(4)] == [200, 200, 429, 429]
    assert int(redis_client.get(day_key)) == 2  # the minute's refusals (the hook's, the gate's) took none
    allowed = entitlements.for_tenant(other.id, "professional").limit("api_calls_per_day")
    assert _api(client, other).headers["X-RateLimit-Remaining"] == str(allowed - 1)  # each tenant's day its own
    assert redis_client.get(tenant_key(other.id, "api", ratelimit.day_window()[0])) == "1"


def test_an_api_write_refused_for_maintenance_is_not_counted_as_a_call(app, factory):
    """What `enforce` refuses before the day's count (a write in maintenance, no API for the
    plan, no limit) is not sent with the minute's count."""
    import dataclasses

    from portal.quotas import limits

    tenant = factory.tenant(plan="professional")
    granted = entitlements.for_tenant(tenant.id, "professional")
    in_maintenance = dataclasses.replace(tenant, maintenance_reason="an upgrade")
    with app.test_request_context("/api/v1/orders", method="POST"):
        assert limits._counts_a_day(tenant, granted) and not limits._counts_a_day(in_maintenance, granted)
    with app.test_request_context("/api/v1/orders", method="GET"):
        assert limits._counts_a_day(in_maintenance, granted)
    with app.test_request_context("/admin/tenants", method="GET"):
        assert not limits._counts_a_day(tenant, granted)  # not the API


def test_an_api_call_refused_once_its_tenant_is_read_again_is_not_counted(client, factory, override, redis_client):
    """The day is counted with the minute on what this process's cached tenant says; when
    the reply shows the tenant changed elsewhere (suspended on another node here) and the
    fresh row refuses the call, that count is given back."""
    from portal.extensions import db
    from portal.services.keys import registry_version_key
    from portal.tenants.services import get_tenant

    tenant = factory.tenant(plan="professional")
    override(tenant, "limit:api_calls_per_day", "5")
    fresh_minute()
    assert _api(client, tenant).headers["X-RateLimit-Remaining"] == "4"  # (this process caches it: active)
    get_tenant(tenant.id).status = "suspended"  # as another node would: the row, then the published version
    db.session.flush()
    redis_client.incr(registry_version_key(tenant.id))
    refused = _api(client, tenant)
    assert refused.status_code == 403, refused.get_data(as_text=True)
    assert int(redis_client.get(tenant_key(tenant.id, "api", ratelimit.day_window()[0]))) == 1
