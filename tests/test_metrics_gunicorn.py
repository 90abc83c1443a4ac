"""/metrics under real gunicorn with gunicorn.conf.py and PROMETHEUS_MULTIPROC_DIR: the
answer adds up every worker's counts, whichever worker gives it, and a worker killed
leaves its counts in the sums (gunicorn's `child_exit` marks only its live gauges gone).
And what gunicorn.conf.py takes from a proxy's headers."""
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal.devserver import stop_process
from tests.servers import free_port
from tests.workers import ROOT, worker_env

TOKEN = "metrics-test-token"
REQUESTS = 40


def _get(url, token=None):
    request = urllib.request.Request(url, headers={"Connection": "close",
                                                   **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read().decode()


def _healthz_count(port):
    for family in text_string_to_metric_families(_get(f"http://127.0.0.1:{port}/metrics", TOKEN)):
        if family.name == "portal_requests":
            return sum(s.value for s in family.samples
                       if s.name == "portal_requests_total" and s.labels.get("endpoint") == "health.healthz")
    return 0


def _worker_pids(master):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master.pid)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def _gunicorn(app, port, **env):
    """gunicorn with gunicorn.conf.py on `port`, once it answers /readyz; stop it with
    stop_process."""
    master = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT,
                              env=worker_env(app, GUNICORN_BIND=f"127.0.0.1:{port}", **env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            _get(f"http://127.0.0.1:{port}/readyz")
            return master
        except OSError:
            if master.poll() is not None or time.monotonic() > deadline:
                stop_process(master)
                ended = master.stderr.read().decode()[-2000:]
                raise AssertionError(f"gunicorn did not answer /readyz: {ended}") from None
            time.sleep(0.3)


def test_metrics_add_up_every_gunicorn_worker_and_keep_a_killed_ones_counts(app, tmp_path):
    port = free_port()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    master = _gunicorn(app, port, GUNICORN_WORKERS=2, GUNICORN_THREADS=2, PROMETHEUS_MULTIPROC_DIR=str(multiproc),
                       PORTAL_METRICS_TOKEN=TOKEN)
    try:
        for _ in range(REQUESTS):
            _get(f"http://127.0.0.1:{port}/healthz")  # a new connection each: both workers take some
        counted = {name.split("_")[-1].removesuffix(".db") for name in os.listdir(multiproc)
                   if name.startswith("counter_")}
        assert len(counted) == 2, counted  # both workers counted requests
        for _ in range(6):  # whichever worker answers: the sum of both
            assert _healthz_count(port) == REQUESTS

        pids = _worker_pids(master)
        os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while pids[0] in _worker_pids(master) or len(_worker_pids(master)) < 2:
            assert time.monotonic() < deadline, "gunicorn did not replace the killed worker"
            time.sleep(0.2)
        # /metrics is asked REQUESTS-free: only /healthz counts here, the dead worker's included.
        assert _healthz_count(port) == REQUESTS
    finally:
        stop_process(master)


def test_gunicorn_takes_no_script_name_from_a_client_even_a_trusted_one(app):
    """gunicorn.conf.py's forwarder_headers: a SCRIPT_NAME header sent from the trusted
    proxy's address (127.0.0.1 here) moves no part of the path (gunicorn's default would
    take `/nope` off `/nope/healthz` and answer the health check)."""
    port = free_port()
    master = _gunicorn(app, port, GUNICORN_WORKERS=1, GUNICORN_THREADS=1)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/nope/healthz",
                                         headers={"SCRIPT_NAME": "/nope", "Connection": "close"})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
        assert answer.value.code == 404
    finally:
        stop_process(master)
