"""The shipped refusal cache (deploy/nginx/) in Debian's nginx, in front of the portal: a
tenant refused by the resolver's gate (over its requests a minute) is answered by nginx
for a second, and nothing else ever is: not another tenant, not a page, not a static file,
not the hook's own first refusal, not a refusal keyed by a crafted address.

The portal is served by werkzeug in a thread of the test (one request at a time: it shares
the test's transaction), nginx by tests/servers.py with the shipped snippets."""
import http.client
import os
import shutil
import subprocess
import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import BASE_DOMAIN
from tests.factories import make_token
from tests.quotas.conftest import fresh_minute
from tests.servers import NGINX, free_port, nginx, wait_ready

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason="Debian's nginx is not installed "
                                "(.ci/run installs it)")


@pytest.fixture()
def front(app, conn, tmp_path):
    """The port of nginx in front of the app (werkzeug, in a thread)."""
    portal_port, port = free_port(), free_port()
    server = make_server("127.0.0.1", portal_port, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, name="portal-behind-nginx", daemon=True)
    serving.start()
    proxy = nginx(port, [portal_port], str(tmp_path))
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz", proxy, str(tmp_path / "error.log"))
        yield port
    finally:
        proxy.terminate()
        proxy.wait(20)
        server.shutdown()
        serving.join(10)


def get(port, path, host=BASE_DOMAIN, **headers):
    """(status, headers, body) of GET `path` through nginx, sent as written (no normalising)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host, **headers})
        answer = connection.getresponse()
        return answer.status, answer.headers, answer.read().decode(errors="replace")
    finally:
        connection.close()


def cache(answer):
    return answer[1].get("X-Refusal-Cache")


def flood(port, tenant, path="/login", **headers):
    """GET the tenant's page until nginx answers a 429 from its cache; the answers."""
    answers = []
    while not answers or cache(answers[-1]) != "HIT":
        assert len(answers) < 20, [(status, cache((status, h, b))) for status, h, b in answers]
        answers.append(get(port, f"/t/{tenant.slug}{path}", **headers))
    return answers


def test_only_the_gates_refusal_is_kept_and_repeated(front, factory, override):
    tenant = factory.tenant()
    override(tenant, "limit:requests_per_minute", "2")
    fresh_minute(margin=10)
    answers = flood(front, tenant)
    # Two let through, the hook's own 429 (not kept), the gate's (kept), then nginx's.
    assert [(answer[0], cache(answer)) for answer in answers] == [
        (200, "MISS"), (200, "MISS"), (429, "MISS"), (429, "MISS"), (429, "HIT")]
    status, headers, body = answers[-1]
    assert "allows 2 requests a minute" in body and "Set-Cookie" not in headers
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert "X-Accel-Expires" not in headers  # nginx's instruction, not passed on
    # Its static files are still served, never from the cache.
    status, headers, _ = get(front, f"/t/{tenant.slug}/static/css/portal.css")
    assert status == 200 and cache((status, headers, None)) == "BYPASS"


def test_a_kept_refusal_is_never_another_tenants(front, factory, override):
    flooder, quiet = factory.tenant(plan="professional"), factory.tenant(plan="professional")
    override(flooder, "limit:requests_per_minute", "2")
    quiet_token = make_token(quiet, factory.admin(quiet))
    fresh_minute(margin=10)
    flood(front, flooder)
    for host, path in ((BASE_DOMAIN, f"/t/{quiet.slug}/login"), (f"{quiet.slug}.{BASE_DOMAIN}", "/login")):
        for _ in range(2):
            status, headers, _ = get(front, path, host=host)
            assert status == 200 and cache((status, headers, None)) == "MISS", (host, path)
    # The flooder's own subdomain names it too: refused, by the portal or by nginx.
    assert get(front, "/login", host=f"{flooder.slug}.{BASE_DOMAIN}")[0] == 429
    # The API: keyed by the tenant the token claims (its id, never its secret).
    for _ in range(2):
        status, headers, body = get(front, "/api/v1/status", Authorization=f"Bearer {quiet_token}")
        assert status == 200 and cache((status, headers, None)) == "MISS", body


def test_a_crafted_address_cannot_key_a_refusal_to_another_tenant(front, factory, override):
    """nginx keys on the raw request, as the portal reads it: `/t/<flooder>/../<quiet>/`
    is the flooder's for the portal, so is its key; a percent-encoded path is not kept."""
    flooder, quiet = factory.tenant(), factory.tenant()
    override(flooder, "limit:requests_per_minute", "2")
    fresh_minute(margin=10)
    flood(front, flooder)
    for _ in range(2):
        assert get(front, f"/t/{flooder.slug}/../{quiet.slug}/login")[0] == 429
    encoded = "".join(f"%{ord(c):02x}" for c in flooder.slug)
    status, headers, _ = get(front, f"/t/{encoded}/login")
    assert status == 429 and cache((status, headers, None)) == "BYPASS"
    status, headers, _ = get(front, f"/t/{quiet.slug}/login")
    assert status == 200 and cache((status, headers, None)) == "MISS"


def test_a_request_nginx_could_read_otherwise_is_neither_kept_nor_answered_from_it(front, factory, override):
    """Found in review: `/t//api/` is on the API for the portal, and a token after a
    no-break space is the portal's (it strips the space) but was not nginx's; together they
    keyed the flooder's refusal as every browser's page on the base domain (the staff
    console). Such requests now bypass the cache both ways."""
    flooder = factory.tenant(plan="professional")
    token = make_token(flooder, factory.admin(flooder))
    override(flooder, "limit:requests_per_minute", "2")
    fresh_minute(margin=10)
    flood(front, flooder)
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    for authorization in ("Bearer \xa0" + token, "Bearer  " + token, f"Bearer {token[:-1]}!"):
        status, headers, _ = get(front, "/t//api/v1/status", Accept=browser, Authorization=authorization)
        assert cache((status, headers, None)) == "BYPASS", authorization
    status, headers, _ = get(front, "/t//api/v1/status", Accept=browser, Authorization="Bearer \xa0" + token)
    assert status == 429  # (the portal read the flooder's token: its gate refused it)
    for _ in range(2):
        status, headers, _ = get(front, "/admin/login", Accept=browser)
        assert status == 200 and cache((status, headers, None)) == "MISS"
    # Nor is a plain token on such a path kept: `//` is a path the cache leaves alone.
    status, headers, _ = get(front, "/t//api/v1/status", Authorization=f"Bearer {token}")
    assert cache((status, headers, None)) == "BYPASS"


def test_a_page_and_json_are_kept_apart(front, factory, override):
    tenant = factory.tenant(plan="professional")
    override(tenant, "limit:requests_per_minute", "2")
    fresh_minute(margin=10)
    flood(front, tenant)  # pages (Accept: none)
    for _ in range(2):
        status, headers, body = get(front, "/api/v1/status", **{"X-Tenant-ID": tenant.slug})
        assert status == 429 and headers["Content-Type"].startswith("application/json"), body
        assert '"code":429' in body.replace(" ", "")
    for _ in range(2):
        status, headers, body = get(front, f"/t/{tenant.slug}/orders", Accept="application/json")
        assert status == 429 and headers["Content-Type"].startswith("application/json"), body


def test_the_shipped_site_is_a_valid_nginx_configuration(tmp_path):
    """deploy/nginx/portal.conf as an operator installs it (the snippets in snippets/ beside
    it), its cache kept under the test's folder instead of /var/lib/nginx."""
    deploy = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "deploy", "nginx")
    (tmp_path / "snippets").mkdir()
    for name in ("portal-refusals-maps.conf", "portal-refusals.conf"):
        shutil.copy(os.path.join(deploy, name), tmp_path / "snippets" / name)
    with open(os.path.join(deploy, "portal.conf")) as site:
        text = site.read()
    assert "/var/lib/nginx/portal-refusals" in text
    (tmp_path / "portal.conf").write_text(text.replace("/var/lib/nginx/portal-refusals", str(tmp_path / "cache")))
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
                                         "events {}\nhttp {\n  include portal.conf;\n}\n")
    checked = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
