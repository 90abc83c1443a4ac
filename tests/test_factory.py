"""The factory: each app keeps its own settings and state (tests build several apps in
one process), and the request pipeline is installed in its order, in one step."""
from portal import create_app, metrics
from portal.logs import assign_request_id, echo_request_id, note_principal
from portal.pipeline import load_principal, refuse_nul
from portal.quotas import limits
from portal.support import impersonation
from tests.conftest import app_config


def test_two_apps_keep_their_own_settings_and_state(app, servers):
    other = create_app(app_config(servers, SLOW_STATEMENT_MS=7, ENTITLEMENTS_CACHE_SECONDS=99,
                                  TENANT_CACHE_LOCAL_SECONDS=11))
    try:
        for key in ("portal.slow_statements", "portal.entitlements", "portal.tenant_lookup", "portal.redis",
                    "portal.silo_engines", "portal.over_limit"):
            assert app.extensions[key] is not other.extensions[key], key
        assert other.extensions["portal.slow_statements"].ms == 7
        assert app.extensions["portal.slow_statements"].ms == app.config["SLOW_STATEMENT_MS"] != 7
        assert other.extensions["portal.entitlements"].seconds == 99
        assert app.extensions["portal.entitlements"].seconds == app.config["ENTITLEMENTS_CACHE_SECONDS"] != 99
        assert other.extensions["portal.tenant_lookup"].local_seconds == 11
        # A forget in one app lifts its own over-limit blocks, not the other's.
        app.extensions["portal.over_limit"].block("00000000-0000-0000-0000-000000000001", 60)
        other.extensions["portal.entitlements"].forget()
        assert app.extensions["portal.over_limit"]._until
        assert len(app.extensions["portal.entitlements"].listeners) == 1  # no growth with each create_app
    finally:
        with other.app_context():
            from portal.extensions import db
            db.engine.dispose()


def test_the_pipeline_is_installed_in_its_order(app):
    steps = app.before_request_funcs[None]
    assert steps[:4] + steps[5:] == [assign_request_id, refuse_nul, limits.enforce, load_principal,
                                     impersonation.enforce, metrics.note_endpoint]
    assert steps[4].__qualname__ == "CSRFProtect.init_app.<locals>.csrf_protect"
    # after_request hooks run newest first: the audit of the request, the headers, the request id.
    ours = [hook for hook in app.after_request_funcs[None] if hook.__module__.startswith("portal.")]
    assert ours == [echo_request_id, note_principal, limits.rate_limit_headers, impersonation.audit]
    # Outermost, the request counting (and log line) around the resolver with its gates.
    assert isinstance(app.wsgi_app, metrics.RequestMetrics)
    assert [gate.__self__ for gate in app.wsgi_app.wsgi_app.gates] == [app.extensions["portal.over_limit"]]
