"""Two web nodes behind nginx, and two job workers (issue 17): the portal as it scales
out, run for real on loopback. Two gunicorn instances with the shipped gunicorn.conf.py
(one worker of 4 threads each, to spare this machine's 2 cores) behind Debian's nginx
balancing round robin, and two `portal.worker` processes taking jobs from one queue.

A tenant user signs in through nginx: the session works whichever node answers. A move
run by one of the workers switches the tenant while both nodes serve it; a suspension
and a resume made elsewhere are seen by both nodes on their next request; sign-out on
one node ends the session on both.
"""
import http.cookiejar
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from sqlalchemy import select

from portal.devserver import stop_process
from portal.extensions import db
from portal.lifecycle import moves, states
from portal.models import Job
from portal.services import jobqueue
from portal.services.passwords import hash_password
from portal.tenancy.context import TenantRef
from portal.tenancy.data import TenantUser
from portal.tenancy.placement import tenant_transaction
from tests.factories import PASSWORD
from tests.servers import NGINX, free_port, nginx, wait_ready
from tests.workers import ROOT, start_worker, stop_worker, worker_env

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason="Debian's nginx is not installed "
                                "(.ci/run installs it)")
ACTOR = ("system", None, "test")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is the answer


class Browser:
    """Cookies kept, redirects not followed, each request on a new connection."""

    def __init__(self, base):
        self.base, self.jar = base, http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def request(self, path, data=None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(urllib.request.Request(self.base + path, data=body), timeout=30) as answer:
                return answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers, answer.read().decode()

    def csrf(self, path):
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', self.request(path)[2]).group(1)


@pytest.fixture()
def behind_nginx(moving_app):
    """(the base URL of nginx, the two nodes' addresses); everything stopped after."""
    folder = tempfile.mkdtemp(prefix="portal-nginx-")
    processes, workers = [], []
    node_ports = [free_port(), free_port()]
    try:
        for port in node_ports:
            # An hour of in-process cache: what the nodes see at once, they see by the registry version.
            env = worker_env(moving_app, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS=1,
                             GUNICORN_THREADS=4, PORTAL_TENANT_CACHE_LOCAL_SECONDS=3600)
            with open(os.path.join(folder, f"node-{port}.log"), "wb") as log:  # (a pipe nobody reads fills up)
                node = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                                        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            processes.append(node)
            wait_ready(f"http://127.0.0.1:{port}/readyz", node, log.name)
        port = free_port()
        balancer = nginx(port, node_ports, folder)
        processes.append(balancer)
        wait_ready(f"http://127.0.0.1:{port}/readyz", balancer, os.path.join(folder, "error.log"))
        workers = [start_worker(moving_app), start_worker(moving_app)]
        yield f"http://127.0.0.1:{port}", {f"127.0.0.1:{p}" for p in node_ports}
    finally:
        for worker in workers:
            stop_worker(worker)
        for process in reversed(processes):
            stop_process(process)
        subprocess.run(["rm", "-rf", folder], check=False)


def _admin_with_password(tenant):
    with tenant_transaction(TenantRef.of(tenant)) as session:
        admin = session.execute(select(TenantUser).where(TenantUser.role == "admin")).scalars().first()
        admin.password_hash = hash_password(PASSWORD)
        return admin.email


def _answers(browser, path, times=6):
    """(statuses, the nodes that answered) of `times` requests of `path`."""
    statuses, nodes = set(), set()
    for _ in range(times):
        status, headers, _body = browser.request(path)
        statuses.add(status)
        nodes.add(headers.get("X-Upstream"))
    return statuses, nodes


def test_two_nodes_behind_nginx_serve_one_tenant_as_one(moving_app, made, behind_nginx):
    base, nodes = behind_nginx
    tenant = made.tenant("pool", orders=5)
    email, slug = _admin_with_password(tenant), tenant.slug
    browser = Browser(base)
    token = browser.csrf(f"/t/{slug}/login")
    status, headers, _ = browser.request(f"/t/{slug}/login", {"email": email, "password": PASSWORD,
                                                              "csrf_token": token})
    assert status == 302, "sign-in through nginx"
    # The session works whichever node answers (round robin: both do).
    assert _answers(browser, f"/t/{slug}/orders") == ({200}, nodes)

    # A move, run by one of the two workers, while both nodes serve the tenant.
    row, job = moves.request_move(tenant, "bridge", None, ACTOR)
    jobqueue.enqueue(job)  # as the Move page does: a worker takes it
    db.session.rollback()  # (this test holds no transaction open: the move's fence takes locks)

    def job_state():
        state, error = db.session.execute(select(Job.state, Job.error).where(Job.id == job.id)).one()
        db.session.rollback()
        return state, error

    deadline = time.monotonic() + 90
    while job_state()[0] not in ("succeeded", "failed"):
        assert browser.request(f"/t/{slug}/orders")[0] == 200  # reads go on throughout
        assert time.monotonic() < deadline, "the move's job did not end"
        time.sleep(0.2)
    assert job_state() == ("succeeded", None)
    db.session.refresh(tenant)
    assert tenant.tier == "bridge"
    statuses, answered = _answers(browser, f"/t/{slug}/orders")
    assert (statuses, answered) == ({200}, nodes)
    assert "Customer 5" in browser.request(f"/t/{slug}/orders")[2]  # its rows, at the new place

    # A suspension and a resume made elsewhere: both nodes, on their next request.
    states.suspend(tenant, "unpaid", ACTOR)
    assert _answers(browser, f"/t/{slug}/orders") == ({403}, nodes)
    states.resume(tenant, "paid", ACTOR)
    statuses, _ = _answers(browser, f"/t/{slug}/orders")
    assert statuses == {302}  # the suspension ended the session: to the sign-in page, on both

    # Signed in again, then out on one node: the cookie is dead on both.
    token = browser.csrf(f"/t/{slug}/login")
    assert browser.request(f"/t/{slug}/login", {"email": email, "password": PASSWORD, "csrf_token": token})[0] == 302
    stolen = list(browser.jar)
    token = browser.csrf(f"/t/{slug}/orders")
    assert browser.request(f"/t/{slug}/logout", {"csrf_token": token})[0] == 302
    for cookie in stolen:
        browser.jar.set_cookie(cookie)
    assert _answers(browser, f"/t/{slug}/orders") == ({302}, nodes)
