"""A real Prometheus (Debian's package, which .ci/run installs) scrapes the portal on
loopback every second; a series is read back through its HTTP API."""
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest
from werkzeug.serving import make_server

from tests.servers import free_port

PROMETHEUS = "/usr/bin/prometheus"

pytestmark = pytest.mark.skipif(not os.path.exists(PROMETHEUS),
                                reason=f"{PROMETHEUS} is absent (Debian's `prometheus` package; .ci/run installs it)")


def query(port, promql):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)["data"]["result"]


def test_prometheus_scrapes_the_portal_and_answers_a_query(app, tmp_path):
    portal_port, prom_port = free_port(), free_port()
    server = make_server("127.0.0.1", portal_port, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, name="portal-for-prometheus", daemon=True)
    serving.start()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: portal\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{portal_port}']\n")
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(3):  # a series of our own, with a known value
            with urllib.request.urlopen(f"http://127.0.0.1:{portal_port}/healthz", timeout=5) as answer:
                assert answer.status == 200
        wanted = 'portal_requests_total{endpoint="health.healthz",method="GET",status="200"}'
        found, up = [], []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not found:
            time.sleep(0.5)
            assert prometheus.poll() is None, prometheus.stderr.read().decode(errors="replace")[-2000:]
            try:
                up = query(prom_port, 'up{job="portal"}')
                found = query(prom_port, wanted)
            except OSError:  # not listening yet
                continue
        assert found, f"no series after 60 s; up: {up}"
        assert up and up[0]["value"][1] == "1"
        assert float(found[0]["value"][1]) >= 3  # our three, and any other /healthz of the run
        assert found[0]["metric"]["job"] == "portal" and found[0]["metric"]["tier"] == "none"
        gauge = query(prom_port, "portal_move_oldest_under_way_seconds")  # a scrape-time gauge, always there
        assert gauge and float(gauge[0]["value"][1]) >= 0
    finally:
        prometheus.terminate()
        try:
            prometheus.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prometheus.kill()
            prometheus.wait()
        server.shutdown()
        serving.join(10)
        shutil.rmtree(tmp_path / "data", ignore_errors=True)
