"""The portal's Redis keys on a Redis Cluster of three masters (PORTAL_REDIS_CLUSTER=1):
every command it sends touches one slot, or is split by slot by the client, and no
tenant's keys or answers reach another's. (`make test-redis-cluster` runs the suites that
use Redis most this way; this test runs in every suite run.)"""
import os
import uuid

import pytest

from portal import create_app
from portal.config import ConfigError
from portal.extensions import db
from portal.services import cache, keys, ratelimit, throttle
from tests.conftest import app_config
from tests.servers import REDIS_SERVER, RedisCluster, redis_client_of

pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="Debian's redis-server is not installed")


@pytest.fixture(scope="module")
def on_a_cluster(app, servers):  # (app: the database migrated, its roles made)
    cluster = RedisCluster().start()
    on_cluster = create_app(app_config(servers, REDIS_URL=cluster.url, REDIS_CLUSTER=True,
                                       RQ_REDIS_URL=servers.redis_url))
    try:
        yield on_cluster, redis_client_of(cluster.url, cluster=True)
    finally:
        with on_cluster.app_context():
            db.engine.dispose()
        cluster.stop()


def test_a_tenant_s_keys_live_on_one_slot_and_tenants_spread_over_the_masters(on_a_cluster):
    app, client = on_a_cluster
    tenants = [uuid.uuid4() for _ in range(12)]
    with app.test_request_context():
        for tenant_id in tenants:
            assert ratelimit.requests_this_minute(tenant_id, 100).count == 1  # the Lua script: four keys, one slot
            api_call = ratelimit.minute_hit(tenant_id, 100, api_call=True)  # five keys, the day's too
            assert api_call.decision().count == 2 and api_call.day_decision(10).count == 1
            cache.set(tenant_id, "report", {"of": str(tenant_id)}, 60)
            throttle.failed(tenant_id, "someone@example.com", "203.0.113.7")
        slots = {t: {client.keyslot(k) for k in client.scan_iter(match=keys.tenant_key(t, "*"))} for t in tenants}
        assert all(len(found) == 1 for found in slots.values())
        nodes = {client.get_node_from_key(keys.tenant_key(t, "x")).name for t in tenants}
        assert len(nodes) >= 2  # twelve tenants: not all on one master
        # Each tenant reads its own cache entry; clearing one leaves the others'.
        assert all(cache.get(t, "report") == {"of": str(t)} for t in tenants)
        assert cache.clear(tenants[0]) >= 1
        assert cache.get(tenants[0], "report") is None
        assert all(cache.get(t, "report") == {"of": str(t)} for t in tenants[1:])
        # Reads across tenants (the staff figures, the overview): one answer per key, in order.
        counts = keys.read_many([keys.tenant_key(t, "rpm", ratelimit.minute_window()[0]) for t in tenants])
        assert counts == ["2"] * len(tenants)  # (each counted twice above: alone, then with an API call's day)
        keys.clear_tenant_keys(tenants[1])
        assert list(client.scan_iter(match=keys.tenant_key(tenants[1], "*"))) == []
        assert cache.get(tenants[2], "report") == {"of": str(tenants[2])}


def test_the_lookup_cache_is_invalidated_across_slots(on_a_cluster, servers):
    """A tenant's lookup entries (by id, by slug, by domain: different slots) go in one
    call; a cluster without a plain Redis for the job queue is refused at start."""
    app, client = on_a_cluster
    with app.app_context():
        lookup = app.extensions["portal.tenant_lookup"]
        prefix = app.config["PORTAL_REDIS_PREFIX"]
        entries = [f"{prefix}:tenant:{kind}" for kind in ("id:x", "slug:x", "host:x.example")]
        for key in entries:
            client.set(key, "{}")
        lookup.invalidate("x", "x", ["x.example"])
        assert [client.exists(key) for key in entries] == [0, 0, 0]
    with pytest.raises(ConfigError, match="PORTAL_RQ_REDIS_URL"):
        create_app(app_config(servers, REDIS_URL="redis://127.0.0.1:1/0", REDIS_CLUSTER=True, RQ_REDIS_URL=None))
