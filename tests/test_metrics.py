"""/metrics (portal/metrics.py): read with the client library's own parser; the values move
with the traffic the test makes; who may read it; no label names a tenant but the bounded
top-N gauges."""
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from portal import create_app
from portal.config import ConfigError
from portal.extensions import db
from portal.metrics import REGISTRY
from portal.models import Tenant
from portal.services import jobqueue
from portal.tenancy.lookup import forget_tenant
from tests.conftest import app_config
from tests.factories import make_token, sign_in_tenant
from tests.quotas.conftest import STAFF_ACTOR, fresh_minute


def limit_requests(tenant, per_minute):
    """The tenant's requests a minute, overridden through the service."""
    from portal.plans import services as plan_services
    from portal.tenants.services import get_tenant

    plan_services.set_override(get_tenant(tenant.id), "limit:requests_per_minute", per_minute, None, "test",
                               STAFF_ACTOR)


def scrape(client, **kwargs):
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/plain"
    return list(text_string_to_metric_families(response.get_data(as_text=True)))


def samples(families):
    """{(sample name, frozenset of label items): value}"""
    return {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}


def value(families, name, **labels):
    """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples(families).items() if n == name and wanted <= found)


def test_requests_counter_rises_by_the_requests_made(client, factory):
    tenant = factory.tenant(plan="basic")
    labels = dict(endpoint="auth.tenant_login", method="GET", status="200", tier="pool", plan="basic")
    before = value(scrape(client), "portal_requests_total", **labels)
    for _ in range(3):
        assert client.get(f"/t/{tenant.slug}/login").status_code == 200
    after = scrape(client)
    assert value(after, "portal_requests_total", **labels) == before + 3
    # the latency histogram counted them too (its count; no time is asserted)
    assert value(after, "portal_request_duration_seconds_count", endpoint="auth.tenant_login", method="GET",
                 tier="pool") >= 3


def test_a_429_raises_the_rate_limit_refusals(client, factory):
    tenant = factory.tenant()
    limit_requests(tenant, "2")
    fresh_minute()
    before = value(scrape(client), "portal_refusals_total", reason="rate_limit")
    statuses = [client.get(f"/t/{tenant.slug}/login").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]  # the second 429 answered early, by the resolver's gate
    after = scrape(client)
    assert value(after, "portal_refusals_total", reason="rate_limit") == before + 2
    assert value(after, "portal_requests_total", status="429", tier="pool") >= 2


def test_a_suspended_tenants_refusal_is_counted(client, factory):
    tenant = factory.tenant()
    row = db.session.get(Tenant, tenant.id)
    row.status = "suspended"
    db.session.flush()
    forget_tenant(row)
    before = value(scrape(client), "portal_refusals_total", reason="suspension")
    assert client.get(f"/t/{tenant.slug}/login").status_code == 403
    assert value(scrape(client), "portal_refusals_total", reason="suspension") == before + 1


def test_tenants_gauge_matches_the_registry(client, factory):
    factory.tenant(plan="professional")
    factory.tenant(plan="professional", tier="bridge")
    families = scrape(client)
    counted = dict(db.session.execute(select(Tenant.status, func.count()).group_by(Tenant.status)).all())
    for status, count in counted.items():
        assert value(families, "portal_tenants", status=status) == count, status
    assert value(families, "portal_tenants", status="active", tier="bridge", plan="professional") == \
        db.session.execute(select(func.count()).where(Tenant.status == "active", Tenant.tier == "bridge",
                                                      Tenant.plan_code == "professional")).scalar_one()


def test_the_other_families_are_there(client, factory):
    families = {f.name for f in scrape(client)}
    for name in ("portal_requests", "portal_request_duration_seconds", "portal_refusals", "portal_redis_errors",
                 "portal_db_pool_checked_out", "portal_db_pool_size", "portal_silo_engines_open", "portal_jobs",
                 "portal_job_oldest_queued_seconds", "portal_job_duration_seconds", "portal_moves_under_way",
                 "portal_move_oldest_under_way_seconds", "portal_tenants", "portal_top_tenant_requests",
                 "portal_top_tenant_db_seconds", "portal_provisioning_duration_seconds",
                 "portal_move_duration_seconds", "portal_move_freeze_seconds", "portal_slow_statements"):
        assert name in families, name
    assert "portal_metrics_part_failed" not in families
    registry_size = value(scrape(client), "portal_db_pool_size", engine="registry")
    assert registry_size >= 5  # this app's pool (5), and those of other apps of the run


def test_jobs_gauge_counts_a_queued_job(client, factory):
    tenant = factory.tenant()
    before = value(scrape(client), "portal_jobs", kind="export", state="queued")
    jobqueue.create("export", tenant.id, ["export"], "metrics-test")
    db.session.flush()
    after = scrape(client)
    assert value(after, "portal_jobs", kind="export", state="queued") == before + 1
    assert value(after, "portal_job_oldest_queued_seconds", kind="export") >= 0


def test_a_job_finished_is_in_the_durations_and_found_by_its_index(client, factory):
    from sqlalchemy import text

    tenant = factory.tenant()
    before = value(scrape(client), "portal_job_duration_seconds_count", kind="export")
    job = jobqueue.create("export", tenant.id, ["export"], "metrics-test")
    db.session.flush()
    db.session.execute(text("UPDATE registry.jobs SET state = 'succeeded', started_at = now() - interval '3 s', "
                            "finished_at = now() WHERE id = :id"), {"id": job.id})
    after = scrape(client)
    assert value(after, "portal_job_duration_seconds_count", kind="export") == before + 1
    assert value(after, "portal_job_duration_max_seconds", kind="export") >= 3
    db.session.execute(text("SET LOCAL enable_seqscan = off"))  # a small table: ask what the index can do
    plan = "\n".join(db.session.execute(text(
        "EXPLAIN SELECT kind FROM registry.jobs WHERE finished_at > now() - interval '1 hour'")).scalars())
    assert "ix_jobs_finished" in plan


# -- who may read it ---------------------------------------------------------------------
def test_from_an_address_not_allowed_it_is_not_there(client):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 404
    assert "portal_requests" not in response.get_data(as_text=True)


def test_through_a_proxy_the_address_does_not_count(client):
    # A proxy on the same host would connect from 127.0.0.1 for anyone on the internet.
    response = client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"})
    assert response.status_code == 404


def test_the_token_opens_it_from_anywhere_and_a_wrong_one_is_refused(app, client):
    app.config["METRICS_TOKEN"] = "s3cret-scrape-token"
    try:
        far = {"REMOTE_ADDR": "203.0.113.9"}
        good = client.get("/metrics", environ_base=far, headers={"Authorization": "Bearer s3cret-scrape-token"})
        assert good.status_code == 200 and "portal_requests_total" in good.get_data(as_text=True)
        for wrong in ("Bearer nope", "Bearer s3cret-scrape-token-but-longer"):
            refused = client.get("/metrics", environ_base=far, headers={"Authorization": wrong})
            assert refused.status_code == 403, wrong
            assert "portal_requests" not in refused.get_data(as_text=True)
        # even from an allowed address, a wrong token is refused (the scraper is misconfigured)
        assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 403
    finally:
        app.config["METRICS_TOKEN"] = None


def test_no_token_configured_means_no_bearer_gets_in(client):
    refused = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"},
                         headers={"Authorization": "Bearer "})
    assert refused.status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"},
                      headers={"Authorization": "Bearer anything"}).status_code == 403


def test_it_answers_on_any_host_but_never_under_a_tenant(client, factory):
    tenant = factory.tenant()
    for host in ("10.1.2.3:8000", "unknown.example", f"{tenant.slug}.portal.test"):
        assert client.get("/metrics", headers={"Host": host}).status_code == 200, host
    assert client.get(f"/t/{tenant.slug}/metrics").status_code == 404


def test_allowed_networks_are_checked_once_at_start(servers):
    with pytest.raises(ConfigError, match="PORTAL_METRICS_ALLOW"):
        create_app(app_config(servers, METRICS_ALLOW="10.0.0.0/8,not-an-address"))
    with pytest.raises(ConfigError, match="PORTAL_METRICS_TOP_TENANTS"):
        create_app(app_config(servers, METRICS_TOP_TENANTS=1000))


# -- cardinality: no tenant in a label, but the bounded top N --------------------------------
TOP = ("portal_top_tenant_requests", "portal_top_tenant_db_seconds")


def test_no_label_names_a_tenant_but_the_top_n(app, client, factory):
    a, b = factory.tenant(plan="professional"), factory.tenant(plan="professional")
    a_admin = factory.admin(a)
    for tenant in (a, b):
        for _ in range(2):
            client.get(f"/t/{tenant.slug}/login")
    client.get("/api/v1/orders", headers={"Authorization": f"Bearer {make_token(a, a_admin)}"})
    families = scrape(client)
    secrets = {a.slug, b.slug, str(a.id), str(b.id), a.id.hex, b.id.hex}
    for family in families:
        for sample in family.samples:
            named = [v for v in sample.labels.values() if any(s in v for s in secrets)]
            if family.name in TOP:
                assert set(sample.labels) == {"tenant"}
            else:
                assert not named, (sample.name, sample.labels)
    top = {s.labels["tenant"]: s.value for f in families if f.name == "portal_top_tenant_requests"
           for s in f.samples}
    assert top.get(a.slug, 0) >= 3 and top.get(b.slug, 0) >= 2  # the tenants' own, by slug
    assert len(top) <= app.config["METRICS_TOP_TENANTS"]
    db_time = {s.labels["tenant"] for f in families if f.name == "portal_top_tenant_db_seconds" for s in f.samples}
    assert a.slug in db_time  # its API call read its orders: tenant database time


def test_the_top_n_is_bounded(app, client, factory):
    tenants = [factory.tenant() for _ in range(4)]
    app.extensions["portal.metrics_top"].n = 2
    try:
        for tenant in tenants:
            client.get(f"/t/{tenant.slug}/login")
        families = scrape(client)
        for name in TOP:
            assert len([s for f in families if f.name == name for s in f.samples]) <= 2, name
    finally:
        app.extensions["portal.metrics_top"].n = app.config["METRICS_TOP_TENANTS"]


def test_redis_errors_are_counted(servers):
    """An app whose Redis is a closed port: its failures are counted (the shared Redis is
    left alone)."""
    from tests.test_health import closed_port

    broken = create_app(app_config(servers, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0"))
    try:
        client = broken.test_client()
        before = value(scrape(client), "portal_redis_errors_total")
        before_open = value(scrape(client), "portal_rate_limit_unchecked_total", outcome="open")
        assert client.get("/readyz").status_code == 503
        after = scrape(client)
        assert value(after, "portal_redis_errors_total", command="PING") >= 1
        assert value(after, "portal_redis_errors_total") > before
        assert value(after, "portal_rate_limit_unchecked_total", outcome="open") == before_open
    finally:
        with broken.app_context():
            db.engine.dispose()


def test_unknown_ids_are_left_out_of_the_top(app, client, redis_client):
    """A tenant counted and removed since is not named by its id."""
    top = app.extensions["portal.metrics_top"]
    gone = uuid.uuid4()
    top.count_request(gone)
    families = scrape(client)
    assert not [s for f in families if f.name in TOP for s in f.samples if str(gone) in s.labels["tenant"]]


def test_a_database_connection_lost_under_a_request_is_a_503_to_retry(client, factory, monkeypatch):
    """A server or PgBouncer restart breaks a connection in use: the request answers 503
    with Retry-After (a load balancer or client tries again), not 500, and is counted."""
    import psycopg2
    from sqlalchemy.exc import OperationalError

    from portal.errors import _connection_lost
    from portal.orders import services as orders

    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))

    def broken():
        raise OperationalError("SELECT ...", {}, psycopg2.OperationalError("server closed the connection unexpectedly"),
                               connection_invalidated=True)

    monkeypatch.setattr(orders, "latest_orders", broken)
    for code, lost in (("57P01", True), ("08006", True), ("57014", False), ("42P01", False)):  # by SQLSTATE
        error = psycopg2.OperationalError("terminating connection")
        monkeypatch.setattr(type(error), "pgcode", code, raising=False)
        assert _connection_lost(OperationalError("SELECT 1", {}, error)) is lost, code
    before = REGISTRY.get_sample_value("portal_refusals_total", {"reason": "database_unreachable"}) or 0
    page = client.get(f"/t/{tenant.slug}/orders")
    assert page.status_code == 503 and page.headers["Retry-After"] == "1"
    assert "could not be reached just now" in page.get_data(as_text=True)
    api = client.get(f"/t/{tenant.slug}/orders", headers={"Accept": "application/json"})
    assert api.status_code == 503 and api.get_json()["error"]["code"] == 503
    assert REGISTRY.get_sample_value("portal_refusals_total", {"reason": "database_unreachable"}) == before + 2
    # Where no handler is looked for by class (the session, read from the database when
    # the request context opens), the same answer.
    monkeypatch.setattr(type(client.application.session_interface), "open_session", lambda *_a: broken())
    monkeypatch.setitem(client.application.config, "PROPAGATE_EXCEPTIONS", False)  # (as in production)
    opened = client.get(f"/t/{tenant.slug}/login")
    assert opened.status_code == 503 and opened.headers["Retry-After"] == "1"
