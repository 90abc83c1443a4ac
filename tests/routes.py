"""Walking the URL map: the routes of given blueprints, filled with given ids."""
import re
import uuid

# Every blueprint but `auth` and `api` is in one of these (tests/test_route_guards.py checks it,
# so a new one is walked by every walker without anyone remembering to list it).
STAFF_BLUEPRINTS = {"tenants", "audit_staff", "placements", "upgrades", "jobs", "plans_staff", "quotas_staff", "outbox",
                    "support_staff", "staff", "moves", "analytics_staff"}
TENANT_BLUEPRINTS = {"selfservice", "orders", "users", "roles", "plans", "quotas", "tokens", "domains", "support",
                     "audit", "analytics"}
# /healthz, /readyz, /metrics: no tenant, no sign-in (tests/test_health.py, tests/test_metrics.py).
OPERATIONS_BLUEPRINTS = {"health", "metrics"}


def rules(app, blueprints):
    return [r for r in app.url_map.iter_rules() if r.endpoint.split(".")[0] in blueprints]


def fill(rule, values):
    """The rule's path with `values` filled in; an argument not given gets a fresh uuid
    (an object nobody has: the route's own tests pass real ids of another tenant)."""
    path = rule.rule
    for arg in rule.arguments:
        path = re.sub(rf"<(?:[^:>]+:)?{arg}>", str(values.get(arg) or uuid.uuid4()), path)
    return path


def tenant_get_urls(app, ids, with_ids_only=False):
    """Every GET route of the tenant's pages, with `ids` filled in."""
    for rule in rules(app, TENANT_BLUEPRINTS):
        if "GET" in rule.methods and (rule.arguments or not with_ids_only):
            yield fill(rule, ids)


def leaks(body, secrets, asked=""):
    """Which of `secrets` show in `body`, beyond what the caller itself wrote in `asked`."""
    return [s for s in secrets if s in body and s not in asked]
