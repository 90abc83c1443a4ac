"""Browser tests: Playwright driving Chromium against the app served on a real port.

The served app is a separate instance on the per-run test database (the session `app`
fixture has migrated it). Its requests commit for real: these tests do not use the
rolled-back `conn` fixture, and every slug and email they make is unique. The whole
database is dropped at the end of the run.
"""
import os
import socket
import threading
import uuid

import pytest
from werkzeug.serving import make_server

from portal import create_app
from portal.auth.services import create_staff_user
from portal.extensions import db
from tests.conftest import app_config
from tests.factories import PASSWORD
from tests.workers import start_worker, stop_worker

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path():
    """PORTAL_CHROMIUM, else Debian's Chromium, else None (Playwright's own build)."""
    configured = os.environ.get("PORTAL_CHROMIUM")
    if configured:
        return configured
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def pytest_collection_modifyitems(config, items):
    # Every test in this folder drives a browser: mark it, so `-m "not browser"` skips it.
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": chromium_path(),
        "args": CHROMIUM_ARGS,
        "headless": True,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}


@pytest.fixture(scope="session")
def live_port():
    """A free port for the live server, known before its app is made (links made by its
    worker point at it: PORTAL_PUBLIC_URL)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def live_app(app, servers, live_port):
    """A second app on the same test database (`app` has already migrated it)."""
    # Its own Redis prefix, so its own job queue: the live worker (alive until the end of
    # the run) must not take the jobs that later in-process tests queue and run.
    live = create_app(app_config(servers, PORTAL_REDIS_PREFIX=f"{servers.redis_prefix}live",
                                 PORTAL_PUBLIC_URL=f"http://127.0.0.1:{live_port}"))
    yield live
    with live.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_worker(live_app, second_server):
    """A real worker process beside the live server, as `make run` starts one."""
    # Tenants whose slug starts with "brfail-" fail at their database role step.
    process = start_worker(live_app, PORTAL_FAULT_STEP="database role@brfail-")
    yield process
    stop_worker(process)


@pytest.fixture(scope="session")
def live_server(live_app, live_worker, live_port):
    server = make_server("127.0.0.1", live_port, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="portal-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def base_url(live_server):
    # pytest-playwright passes this to every new browser context: page.goto("/admin/login").
    return live_server


@pytest.fixture(scope="session")
def staff_user(live_app):
    """A superadmin, committed in the test database: (email, password)."""
    email = f"browser-{uuid.uuid4().hex[:8]}@staff.example"
    with live_app.app_context():
        create_staff_user(email, "superadmin", PASSWORD)
        db.session.remove()
    return email, PASSWORD


class MadeThroughTheUi:
    """What a test made through the live server that outlives its requests: tenants
    (bridge schemas, silo databases, their roles) and placements, by slug and name."""

    def __init__(self):
        self.slugs = []
        self.placements = []

    def tenant(self, slug):
        self.slugs.append(slug)
        return slug

    def placement(self, name):
        self.placements.append(name)
        return name


@pytest.fixture()
def made_through_ui(live_app):
    """Record tenants and placements a browser test makes; after the test, drop the
    tenants' storage and delete their registry rows, then the placements.

    The registry rows go too: a bridge tenant whose schema is gone would fail every later
    `upgrade --all`, and a placement left behind shows in every later test's placements."""
    from sqlalchemy import delete

    from portal.lifecycle.exports import delete_rows
    from portal.lifecycle.moves import drop_old_copies
    from portal.lifecycle.storage import drop_storage
    from portal.models import Placement, Tenant
    from portal.tenancy.context import TenantRef
    from portal.tenancy.lookup import forget_tenant
    from portal.tenants.services import get_tenant_by_slug

    made = MadeThroughTheUi()
    yield made
    failures = []
    with live_app.app_context():
        try:
            for slug in made.slugs:
                tenant = get_tenant_by_slug(slug)
                if tenant is None:
                    continue  # the form refused it: nothing was made
                try:
                    drop_old_copies(tenant.id)  # a moved tenant's old place too
                    if tenant.tier == "pool":
                        delete_rows(tenant)
                    drop_storage(tenant.id, tenant.tier, TenantRef.of(tenant).placement_env)
                    forget_tenant(tenant)
                    db.session.execute(delete(Tenant).where(Tenant.id == tenant.id))
                    db.session.commit()
                except Exception as exc:  # go on with the others; fail the test below
                    db.session.rollback()
                    failures.append(f"tenant {slug}: {exc!r}")
            if made.placements:
                db.session.execute(delete(Placement).where(Placement.name.in_(made.placements)))
                db.session.commit()
        finally:
            db.session.remove()
    assert not failures, "cleanup failed: " + "; ".join(failures)
