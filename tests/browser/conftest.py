"""Browser tests: Playwright driving Chromium against the app served on a real port.

The served app is a separate instance on the per-run test database (the session `app`
fixture has migrated it). Its requests commit for real: these tests do not use the
rolled-back `conn` fixture, and every slug and email they make is unique. The whole
database is dropped at the end of the run.
"""
import os
import threading
import uuid

import pytest
from werkzeug.serving import make_server

from portal import create_app
from portal.auth.services import create_staff_user
from portal.extensions import db
from tests.conftest import app_config
from tests.factories import PASSWORD

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
def live_app(app, servers):
    """A second app on the same test database (`app` has already migrated it)."""
    live = create_app(app_config(servers))
    yield live
    with live.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(live_app):
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
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
