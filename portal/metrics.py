"""Prometheus metrics: their definitions, the request counting, the scrape-time gauges and
the `/metrics` view (docs/operations.md lists every name, its labels and what to alert on).

- Counted in memory as things happen (no query on the hot path): requests (endpoint,
  method, status, tier, plan) and their latency, refusals by reason, Redis errors, rate
  limits checked without Redis, slow statements, database pool use, silo engines open,
  provisioning and move durations, move freezes.
- Computed when scraped (a few bounded queries): tenants by status, tier and plan; jobs by
  kind and state, the oldest queued, durations of the last hour; moves under way; the top
  tenants by requests and by database time.

No label takes a tenant's slug or id, but `portal_top_tenant_*` (at most
PORTAL_METRICS_TOP_TENANTS series each). Under gunicorn, set PROMETHEUS_MULTIPROC_DIR (an
empty directory, the same for every worker of the host; gunicorn.conf.py marks dead workers):
then /metrics adds up every process's counts. Without it each process counts alone.

/metrics answers only a request from an address of PORTAL_METRICS_ALLOW that came straight
(no X-Forwarded-For: a proxy's own address says nothing of who asked), or one carrying
`Authorization: Bearer <PORTAL_METRICS_TOKEN>`. Anyone else gets 404, as if it were not
there (nothing tells a stranger the portal has it); a wrong token gets 403, so that a
misconfigured scraper says so rather than look for a wrong address.
"""
import gc
import hmac
import ipaddress
import logging
import os
import threading
import time
import uuid
import weakref
from functools import partial

import redis
import redis.cluster
from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import event, text

from portal.config import ConfigError
from portal.extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
REGISTRY = CollectorRegistry(auto_describe=True)  # what this process counts (plain mode)
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# The reasons a request is refused before its view, as `portal_refusals_total{reason}`.
REFUSAL_REASONS = ("rate_limit", "rate_limit_unchecked", "api_quota", "storage_quota", "feature", "suspension",
                   "closed", "provisioning", "maintenance", "move_freeze", "database_unreachable")
TOP_MAX = 100  # PORTAL_METRICS_TOP_TENANTS at most
TOP_WINDOW_SECONDS = 60  # the top tenants are counted per minute, over the last TOP_WINDOWS
TOP_WINDOWS = 5
TOP_FLUSH_SECONDS = 10  # a process hands its counts to Redis at most this often
TOP_TRACKED = 10_000  # tenants a process counts between two hand-overs (more are not counted)

REQUESTS = Counter("portal_requests", "Requests answered, by endpoint, method, status, tier and plan.",
                   ["endpoint", "method", "status", "tier", "plan"], registry=REGISTRY)
LATENCY = Histogram("portal_request_duration_seconds", "Time to answer a request, body included.",
                    ["endpoint", "method", "tier"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
REFUSALS = Counter("portal_refusals", "Requests refused before their view, by reason.", ["reason"],
                   registry=REGISTRY)
REDIS_ERRORS = Counter("portal_redis_errors", "Redis commands that failed: Redis unreachable or too slow.",
                       ["command"], registry=REGISTRY)
RATE_LIMIT_UNCHECKED = Counter("portal_rate_limit_unchecked", "Rate limits that could not be checked (Redis "
                               "unreachable), by what was done: let through (open) or refused (closed).",
                               ["outcome"], registry=REGISTRY)
SLOW_STATEMENTS = Counter("portal_slow_statements", "Tenant statements at least PORTAL_SLOW_STATEMENT_MS long.",
                          registry=REGISTRY)
POOL_CHECKED_OUT = Gauge("portal_db_pool_checked_out", "Database connections in use, by engine (registry, silo).",
                         ["engine"], registry=REGISTRY, multiprocess_mode="livesum")
POOL_SIZE = Gauge("portal_db_pool_size", "Database connections the pools keep, by engine (registry, silo).",
                  ["engine"], registry=REGISTRY, multiprocess_mode="livesum")
SILO_ENGINES = Gauge("portal_silo_engines_open", "Silo tenants' engines open.", registry=REGISTRY,
                     multiprocess_mode="livesum")
PROVISIONING = Histogram("portal_provisioning_duration_seconds", "Time to provision (or import) a tenant.",
                         ["kind", "outcome"], registry=REGISTRY,
                         buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800))
MOVE_DURATION = Histogram("portal_move_duration_seconds", "Time a move ran, by how it ended.", ["outcome"],
                          registry=REGISTRY, buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200))
MOVE_FREEZE = Histogram("portal_move_freeze_seconds", "How long a move froze its tenant's writes (at the switch).",
                        registry=REGISTRY, buckets=(0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5, 10))
WRITE_HELD = Histogram("portal_write_held_seconds", "How long a write waited for a move's freeze to end "
                       "(web processes; a write held to the end of PORTAL_MOVE_HOLD_WRITES_MS is then refused).",
                       registry=REGISTRY, buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1, 3))


def refused(environ, reason):
    """Note why this request is refused (counted once, when it is answered)."""
    environ["portal.refusal"] = reason


def redis_failed(command):
    REDIS_ERRORS.labels(str(command or "?").split(" ", 1)[0].upper()[:32]).inc()


class _CountingPipeline(redis.client.Pipeline):
    def execute(self, raise_on_error=True):
        try:
            return super().execute(raise_on_error)
        except (redis.ConnectionError, redis.TimeoutError):
            redis_failed("PIPELINE")
            raise


class SentCommand:
    """A command written to Redis now, its reply read later (`reply`): what the caller does
    in between overlaps Redis's round trip. Its connection stays out of the pool until the
    reply is read; read or not, `reply` must be called (a connection that fails is dropped)."""

    def __init__(self, client, *args):
        self.pool, self.command = client.connection_pool, args[0]
        self.connection = self.pool.get_connection()
        try:
            self.connection.send_command(*args)
        except BaseException as exc:
            self._give_back(exc)
            raise

    def reply(self):
        if self.connection is None:  # (given back: it may carry someone else's command by now)
            raise RuntimeError(f"the reply to {self.command} was read already")
        try:
            answer = self.connection.read_response()  # (on a failure to read, it disconnects)
        except BaseException as exc:
            self._give_back(exc)
            raise
        self._give_back()
        return answer

    def _give_back(self, exc=None):
        connection, self.connection = self.connection, None
        if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            redis_failed(self.command)
        if exc is not None and not isinstance(exc, redis.ResponseError):  # (Redis answered: the connection is sound)
            connection.disconnect()
        self.pool.release(connection)


class CountingRedis(redis.Redis):
    """The app's Redis client: a command that fails for want of Redis (unreachable, too
    slow) is counted in `portal_redis_errors_total{command}`, then raised as before."""

    def send_now(self, *args):
        """`args` sent at once, the reply read later: a SentCommand."""
        return SentCommand(self, *args)

    def execute_command(self, *args, **options):
        try:
            return super().execute_command(*args, **options)
        except (redis.ConnectionError, redis.TimeoutError):
            redis_failed(args[0] if args else None)
            raise

    def pipeline(self, transaction=True, shard_hint=None):
        return _CountingPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class CountingRedisCluster(redis.cluster.RedisCluster):
    """The same, on a Redis Cluster (PORTAL_REDIS_CLUSTER=1). A cluster that cannot be
    reached raises the client's own RedisClusterException: raised here as a
    ConnectionError, so that every fallback for Redis down (rate limits, lookups, the
    cache) takes it. (Failures of its pipelines are not counted.)"""

    def execute_command(self, *args, **options):
        try:
            return super().execute_command(*args, **options)
        except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterDownError):
            redis_failed(args[0] if args else None)
            raise
        except redis.exceptions.RedisClusterException as exc:
            redis_failed(args[0] if args else None)
            raise redis.ConnectionError(str(exc)) from exc


def redis_client(cfg):
    """The app's Redis client for REDIS_URL: a cluster's when REDIS_CLUSTER."""
    options = {"socket_timeout": 1, "socket_connect_timeout": 1, "decode_responses": True}
    if cfg["REDIS_CLUSTER"]:
        # One retry, no backoff: a master that is down must cost a request about a socket
        # timeout, not the client's default ten tries.
        return CountingRedisCluster.from_url(cfg["REDIS_URL"], retry=Retry(NoBackoff(), 1), **options)
    return CountingRedis.from_url(cfg["REDIS_URL"], **options)


# -- install --------------------------------------------------------------------------
def install(app):
    """The request counting (a WSGI layer around everything, so refusals of the resolver
    are counted too), the pool watches, the top tenants' counts; the view is a blueprint."""
    cfg = app.config
    top_n = cfg["METRICS_TOP_TENANTS"]
    if not 0 <= top_n <= TOP_MAX:
        raise ConfigError(f"PORTAL_METRICS_TOP_TENANTS must be from 0 to {TOP_MAX}, got {top_n}")
    app.extensions["portal.metrics_allow"] = _networks(cfg["METRICS_ALLOW"])
    top = app.extensions["portal.metrics_top"] = TopTenants(app)
    app.extensions["portal.slow_statements"].spent = top.count_db_time
    app.wsgi_app = RequestMetrics(app, app.wsgi_app, top)
    app.before_request(note_endpoint)
    with app.app_context():
        watch_pool(db.engine, "registry")
    silos = app.extensions["portal.silo_engines"]
    made = silos.on_create

    def on_create(engine):
        if made is not None:
            made(engine)
        watch_pool(engine, "silo", silo=True)

    silos.on_create = on_create


def _networks(spec):
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"PORTAL_METRICS_ALLOW must be addresses or networks, comma-separated: {exc}") from None


def note_endpoint():
    request.environ["portal.endpoint"] = request.endpoint or "(unmatched)"


_open_silos = weakref.WeakSet()


def watch_pool(engine, name, silo=False):
    """Count `engine`'s connections in and out, and its pool's size, under `name`."""
    POOL_SIZE.labels(name).inc(engine.pool.size())
    in_use = POOL_CHECKED_OUT.labels(name)
    event.listen(engine, "checkout", lambda *_: in_use.inc())
    event.listen(engine, "checkin", lambda *_: in_use.dec())
    if silo:
        SILO_ENGINES.inc()
        _open_silos.add(engine)

        @event.listens_for(engine, "engine_disposed")
        def _disposed(disposed):
            if disposed in _open_silos:
                _open_silos.discard(disposed)
                SILO_ENGINES.dec()
                POOL_SIZE.labels(name).dec(disposed.pool.size())


# -- requests ---------------------------------------------------------------------------
class RequestMetrics:
    """WSGI: count each request when its answer is sent (body included), and write its log
    line (portal/logs.py)."""

    def __init__(self, app, wsgi_app, top):
        self.app, self.wsgi_app, self.top = app, wsgi_app, top

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        seen = {}

        def watching(status, headers, exc_info=None):
            seen["status"] = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info)

        try:
            body = self.wsgi_app(environ, watching)
        except BaseException:
            seen.setdefault("status", "500")
            self.finish(environ, seen, started)
            raise
        return _Answered(body, partial(self.finish, environ, seen, started))

    def finish(self, environ, seen, started):
        from portal.logs import request_line

        # No garbage collection while counting: a half-read answer's generator finalized by
        # the collector counts itself (_Answered.__iter__), and a collection can start on any
        # allocation, such as inside prometheus_client's lock on one of these metrics, which
        # that count would then wait for forever (seen once: a test process hung).
        collecting = gc.isenabled()
        gc.disable()
        try:
            seconds = time.perf_counter() - started
            tenant = environ.get("portal.tenant")
            endpoint = environ.get("portal.endpoint") or "(refused before the app)"
            method = environ.get("REQUEST_METHOD", "")
            method = method if method in METHODS else "other"
            tier, plan = (tenant.tier, tenant.plan_code) if tenant is not None else ("none", "none")
            status = seen.get("status", "0")
            REQUESTS.labels(endpoint, method, status, tier, plan).inc()
            LATENCY.labels(endpoint, method, tier).observe(seconds)
            reason = environ.get("portal.refusal")
            if reason:
                REFUSALS.labels(reason).inc()
            if tenant is not None and endpoint != "static":
                self.top.count_request(tenant.id)
            self.top.hand_over_if_due()
            request_line(environ, status, seconds)
        except Exception:  # counting must never break an answer
            log.exception("request metrics failed")
        finally:
            if collecting:
                gc.enable()


class _Answered:
    """The answer's body, calling `done` once: when it has been sent whole, or closed
    (a WSGI server always closes it; a test client may only read it)."""

    def __init__(self, body, done):
        self.body, self._done = body, done

    def __iter__(self):
        try:
            yield from self.body
        finally:
            self.done()

    def close(self):
        try:
            closing = getattr(self.body, "close", None)
            if closing is not None:
                closing()
        finally:
            self.done()

    def done(self):
        done, self._done = self._done, None
        if done is not None:
            done()


# -- top tenants ----------------------------------------------------------------------------
class TopTenants:
    """Each process counts requests and database time per tenant in memory; every
    TOP_FLUSH_SECONDS (on a request's end) it adds them to two sorted sets a minute in Redis,
    where a scrape reads the top N of the last TOP_WINDOWS minutes, for the whole fleet."""

    def __init__(self, app):
        self.redis = app.extensions["portal.redis"]
        self.prefix = app.config["PORTAL_REDIS_PREFIX"]
        self.n = app.config["METRICS_TOP_TENANTS"]
        self._lock = threading.Lock()
        self._requests, self._db_seconds = {}, {}
        self._due = time.monotonic() + TOP_FLUSH_SECONDS

    def key(self, kind, window):
        return f"{self.prefix}:{{metrics}}:top:{kind}:{window}"  # one hash tag: one Redis Cluster slot

    def count_request(self, tenant_id):
        if self.n:
            with self._lock:
                if tenant_id in self._requests or len(self._requests) < TOP_TRACKED:
                    self._requests[tenant_id] = self._requests.get(tenant_id, 0) + 1

    def count_db_time(self, tenant_id, elapsed_ms):
        if self.n:
            with self._lock:
                if tenant_id in self._db_seconds or len(self._db_seconds) < TOP_TRACKED:
                    self._db_seconds[tenant_id] = self._db_seconds.get(tenant_id, 0.0) + elapsed_ms / 1000

    def hand_over_if_due(self):
        if time.monotonic() >= self._due:
            self.hand_over()

    def hand_over(self):
        with self._lock:
            counts, self._requests, self._db_seconds = ((self._requests, self._db_seconds), {}, {})
            self._due = time.monotonic() + TOP_FLUSH_SECONDS
        if not any(counts):
            return
        window = int(time.time() // TOP_WINDOW_SECONDS)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for kind, values in zip(("requests", "db_seconds"), counts, strict=True):
                key = self.key(kind, window)
                for tenant_id, amount in values.items():
                    pipe.zincrby(key, amount, str(tenant_id))
                pipe.expire(key, TOP_WINDOW_SECONDS * (TOP_WINDOWS + 2))
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("top tenants not counted: Redis unreachable: %s", exc)

    def read(self, kind):
        """[(tenant id, amount)] of the top N over the last TOP_WINDOWS minutes."""
        if not self.n:
            return []
        window = int(time.time() // TOP_WINDOW_SECONDS)
        keys = [self.key(kind, w) for w in range(window - TOP_WINDOWS + 1, window + 1)]
        union = self.key(kind, f"union-{uuid.uuid4().hex}")
        pipe = self.redis.pipeline(transaction=False)
        pipe.zunionstore(union, keys)
        pipe.zrevrange(union, 0, self.n - 1, withscores=True)
        pipe.unlink(union)
        return pipe.execute()[1]


# -- scrape ---------------------------------------------------------------------------------
class ScrapeCollector:
    """The gauges computed when scraped, from the registry database and Redis."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        for part in (self._tenants, self._jobs, self._moves, self._top):
            try:
                yield from part()
            except Exception as exc:  # one part failing leaves the others (and says so)
                db.session.rollback()
                log.warning("metrics: %s not collected: %s", part.__name__.strip("_"), exc)
                failed = GaugeMetricFamily("portal_metrics_part_failed", "A part of the scrape that failed.",
                                           labels=["part"])
                failed.add_metric([part.__name__.strip("_")], 1)
                yield failed

    def _rows(self, sql):
        return db.session.execute(text(sql)).all()

    def _tenants(self):
        family = GaugeMetricFamily("portal_tenants", "Tenants by status, tier and plan.",
                                   labels=["status", "tier", "plan"])
        for status, tier, plan, count in self._rows(
                "select status, tier, plan_code, count(*) from registry.tenants group by 1, 2, 3"):
            family.add_metric([status, tier, plan], count)
        yield family

    def _jobs(self):
        jobs = GaugeMetricFamily("portal_jobs", "Jobs queued and running now; failed and interrupted in the last "
                                 "24 hours; by kind and state.", labels=["kind", "state"])
        for kind, state, count in self._rows(
                "select kind, state, count(*) from registry.jobs where state in ('queued', 'running') "
                "or (state in ('failed', 'interrupted') and finished_at > now() - interval '24 hours') "
                "group by 1, 2"):
            jobs.add_metric([kind, state], count)
        yield jobs
        oldest = GaugeMetricFamily("portal_job_oldest_queued_seconds", "Age of the oldest queued job, by kind.",
                                   labels=["kind"])
        for kind, age in self._rows("select kind, greatest(0, extract(epoch from clock_timestamp() - "
                                    "min(created_at))) from registry.jobs where state = 'queued' group by 1"):
            oldest.add_metric([kind], float(age))
        yield oldest
        took = SummaryMetricFamily("portal_job_duration_seconds", "Jobs finished in the last hour: how long they "
                                   "ran, by kind.", labels=["kind"])
        longest = GaugeMetricFamily("portal_job_duration_max_seconds", "The longest job of the last hour, by kind.",
                                    labels=["kind"])
        for kind, count, total, most in self._rows(
                "select kind, count(*), sum(s), max(s) from (select kind, extract(epoch from finished_at - "
                "started_at) as s from registry.jobs where finished_at > now() - interval '1 hour' "
                "and started_at is not null) j group by 1"):
            took.add_metric([kind], count, float(total or 0))
            longest.add_metric([kind], float(most or 0))
        yield took
        yield longest

    def _moves(self):
        under_way = GaugeMetricFamily("portal_moves_under_way", "Moves not yet ended, by state.", labels=["state"])
        oldest = GaugeMetricFamily("portal_move_oldest_under_way_seconds",
                                   "Age of the oldest move not yet ended (0: none).")
        most = 0.0
        for state, count, age in self._rows(
                "select state, count(*), greatest(0, extract(epoch from clock_timestamp() - min(created_at))) "
                "from registry.tenant_moves "
                "where state in ('queued', 'copying', 'catching_up', 'frozen', 'validating') group by 1"):
            under_way.add_metric([state], count)
            most = max(most, float(age))
        oldest.add_metric([], most)
        yield under_way
        yield oldest

    def _top(self):
        top = self.app.extensions["portal.metrics_top"]
        top.hand_over()  # this process's own counts, up to now
        families = []
        for kind, name, doc in (
                ("requests", "portal_top_tenant_requests", "Requests of the busiest tenants"),
                ("db_seconds", "portal_top_tenant_db_seconds", "Database time (seconds) of the busiest tenants")):
            family = GaugeMetricFamily(name, f"{doc} over the last {TOP_WINDOWS} minutes (the top "
                                       "PORTAL_METRICS_TOP_TENANTS).", labels=["tenant"])
            families.append((family, top.read(kind)))
        ids = {tenant_id for _, found in families for tenant_id, _ in found}
        slugs = dict(self._rows_for(ids))
        for family, found in families:
            for tenant_id, amount in found:
                if tenant_id in slugs:  # (a tenant removed since is left out)
                    family.add_metric([slugs[tenant_id]], amount)
            yield family

    def _rows_for(self, ids):
        if not ids:
            return []
        return db.session.execute(text("select id::text, slug from registry.tenants "
                                       "where id = any(cast(:ids as uuid[]))"), {"ids": sorted(ids)}).all()


class _Scrape:
    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def exposition(app):
    """The text of /metrics: every process's counts (multiprocess mode) or this one's, and
    the gauges computed now."""
    directory = os.environ.get(MULTIPROC_DIR)
    if directory:
        from prometheus_client import multiprocess

        counted = multiprocess.MultiProcessCollector(None, path=directory)
    else:
        counted = REGISTRY
    # Bounded: a slow registry must not hold the scrape (nor the connection) for long.
    db.session.execute(text("select set_config('statement_timeout', '5000', true)"))
    try:
        return generate_latest(_Scrape(counted, ScrapeCollector(app)))
    finally:
        db.session.rollback()


def allowed():
    """Whether this request may read /metrics: None (yes), or the refusal's status."""
    cfg = current_app.config
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Bearer" and given:
        token = cfg["METRICS_TOKEN"]
        return None if token and hmac.compare_digest(given.strip().encode(), token.encode()) else 403
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return 404
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return 404
    networks = current_app.extensions["portal.metrics_allow"]
    return None if any(address in network for network in networks) else 404


@bp.get("/metrics")
def scrape():
    if request.environ.get("portal.tenant") is not None:  # the bare path only, never a tenant's
        abort(404)
    refusal = allowed()
    if refusal is not None:
        abort(refusal)
    return Response(exposition(current_app._get_current_object()), mimetype=CONTENT_TYPE_LATEST)
