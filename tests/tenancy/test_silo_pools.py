"""A silo engine's pool keeps the connections it opens (up to a gunicorn worker's threads):
concurrent requests of one silo tenant reuse them instead of connecting (and
authenticating) again each time; the connection budget still bounds the engines."""
import threading

from sqlalchemy import event, text

from portal.config import load_config
from portal.tenancy.engines import SiloEngines


def _request(engine, barrier):
    with engine.connect() as conn:
        barrier.wait(timeout=10)  # all four hold a connection at the same time
        conn.execute(text("select 1"))


def test_concurrent_requests_reuse_the_connections_the_pool_opened(servers):
    cfg = load_config({"DATABASE_URL": servers.owner_url, "REDIS_URL": servers.redis_url})
    engines = SiloEngines(cfg["SILO_MAX_ENGINES"], cfg["SILO_POOL_SIZE"], cfg["SILO_MAX_OVERFLOW"],
                          cfg["SILO_CONNECTION_BUDGET"])
    engine = engines.get("tenant-a", servers.owner_url, cap=5)  # a plan's 5 database connections
    connects = []
    event.listen(engine, "connect", lambda *args: connects.append(1))
    try:
        for _ in range(3):  # three bursts of four requests at once, as a worker's four threads
            barrier = threading.Barrier(4)

            threads = [threading.Thread(target=_request, args=(engine, barrier)) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert len(connects) == 4  # the first burst's, kept: none made again
        assert engine.pool.checkedin() == 4
    finally:
        engines.dispose_all()


def test_the_budget_bounds_the_engines_kept():
    engines = SiloEngines(32, 4, 0, 64)
    assert engines.capacity == 16  # 64 connections, 4 an engine
