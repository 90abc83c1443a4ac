"""Production settings for `gunicorn wsgi:app`; each can be overridden from the environment.

Health checks (portal/health.py; any host, no sign-in, no rate limit): point the load
balancer's health check at `GET /readyz` (200 when the registry database and Redis answer
and the migrations are at head; 503 with a JSON list of what is wrong), and a liveness
probe, if any, at `GET /healthz` (the process answers; restart it only when this fails).

Metrics (portal/metrics.py, docs/operations.md): with several workers, set
PROMETHEUS_MULTIPROC_DIR to an empty directory (created and emptied before gunicorn starts,
e.g. a tmpfs, the same for the job worker of this host) so that `/metrics` adds up every
worker's counts; `child_exit` below marks a dead worker's live gauges gone. Unset, each
worker answers with its own counts only.
"""
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 30
keepalive = 5
# Each request's line is the portal's own JSON line (portal/logs.py): gunicorn's access log
# would repeat it; GUNICORN_ACCESSLOG=- turns it back on.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
# Trust X-Forwarded-* only from the load balancer's addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# ...and no SCRIPT_NAME or PATH_INFO header from them (gunicorn's default trusts both): the
# portal reads a tenant's `/t/<slug>/` prefix from the path itself, and a proxy's cache
# (deploy/nginx/) keys on the path as sent; a header moving part of it into SCRIPT_NAME
# would make the two disagree on the tenant.
forwarder_headers = ""


def child_exit(server, worker):
    """A worker ended: its live gauges (database connections in use, pools, silo engines)
    leave the sums of /metrics (prometheus-client's multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
