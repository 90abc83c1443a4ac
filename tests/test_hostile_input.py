"""The hostile-input walker (DESIGN.md §5: no input, however hostile, gets a 5xx; §6).

What is walked is found in the URL map, nobody lists routes (the machinery is in
tests/hostile.py and tests/hostile_walker.py); one test per blueprint (STAFF_BLUEPRINTS,
TENANT_BLUEPRINTS, `auth`, `api`), so one world serves all its routes and a run lists every
problem of the blueprint, one line each, naming route, field and value:
- every form: a POST route's forms are found by GETting the pages of its side and parsing their
  <input>/<select>/<textarea>s. First the walker finds a request the portal accepts (the page's
  own values, empty ones filled from the field's name, a <select> set to another option, its own
  credentials on a sign-in form), then each field in turn gets each CORPUS value, the others
  valid and the CSRF token kept. The number-like values are tried again under each option of the
  <select>s above a one-line input (an override's key says whether its value is a feature or a
  limit); a lone checkbox gets only FLAG. Ids in paths are real: those of one enterprise tenant
  with one of everything, as its admin or as a superadmin; auth forms as nobody.
- every path argument of every route, each CORPUS value in place of the real id;
- every GET route's query arguments (`page`, its GET forms' fields and its links' arguments, the
  names its view reads from request.args), with QUERY_CORPUS;
- every API route, with a token holding every scope: whole hostile documents (100,000 '[', an
  object 1,000 deep, wrong types, a lone surrogate in every string) and each member of a sample
  body (API_SAMPLES) replaced by each of JSON_VALUES;
- the Host and X-Tenant-ID headers.

What each write (POST, PATCH, DELETE) must do:
1. never answer 5xx (an exception out of the WSGI middleware counts as one);
2. if nothing changed, say why: a 4xx, a page with a message beside a field (an element whose
   class holds "error", or aria-invalid), or a redirect with a flashed error. A redirect or a
   page with neither a message nor a change is a silent refusal, and fails;
3. if something changed (the value was accepted), the answer must not be a refusal (no partial
   writes), and the value must be one a field may hold. Most corpus values are legitimate
   somewhere: "-1" or "Аdmin" is a fine reason for a suspension, "" a fine blank for an optional
   field, and a value a field ignores (a bad `next`) is no harm; failing those would be a walker
   that cries wolf. Never acceptable, failed when found in what changed: control characters, the
   10,000-character string, and tab/newline in a one-line <input> (a <textarea> may hold them).
   In JSON, where one line cannot be told from many, any of JSON_HOSTILE accepted at all fails.
   After an accepted change the pages that show it (the redirect's target, the form's page, the
   tenant's home, its staff page; for the API its argument-free reads) must answer without a 5xx:
   a stored value that breaks a page is a bug of the write.
Reads (GETs with hostile query or path values) must not 5xx, change nothing, nor lose the
sign-in; ignoring a bad `page` (page 1) is fine. The walker's own valid requests are held to
"no 5xx" only.

"Changed" is read from the database: every registry row and every row of the tenant in every
tenant table, as text, before and after (a checksum per table first, rows when it differs).
Audit events are rows like any other, except those that record the walk rather than a change
(sign-ins, audited outbox reads, impersonated requests): rows rather than a count, so that a
failure names the tables that changed. A sign-in of the auth forms' anonymous client is a
change too. Each write runs in a savepoint rolled back right after it, with the caches emptied,
so an accepted value never changes what the next request meets. A 5xx names the exception the
app logged (or raised), with the innermost line of portal code it passed.
"""
import logging

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.lifecycle import states
from portal.lifecycle.exports import export_file
from portal.lifecycle.provisioning import create_tenant
from portal.models import AuditEvent, PlanRequest, Tenant, TenantDomain
from portal.plans import services as plan_services
from portal.services import entitlements, mail
from portal.staff import services as staff_services
from portal.tenancy.context import TenantRef, tenant_context
from portal.tokens import services as tokens
from tests.conftest import BASE_DOMAIN, clear_redis
from tests.factories import sign_in_staff, sign_in_tenant, unique_slug
from tests.hostile import API_SAMPLES, QUERY_CORPUS
from tests.hostile_walker import Walker, open_
from tests.routes import OPERATIONS_BLUEPRINTS, STAFF_BLUEPRINTS, TENANT_BLUEPRINTS, rules

BLUEPRINTS = sorted(STAFF_BLUEPRINTS) + sorted(TENANT_BLUEPRINTS) + ["auth", "api"] + sorted(OPERATIONS_BLUEPRINTS)
SYSTEM = ("system", None, "test")


@pytest.fixture()
def world(app, client, factory):
    """One enterprise tenant with one of everything a route takes an id of, a suspended
    tenant (its page has the resume form), a signed-in superadmin and tenant admin."""
    slug = unique_slug("walk")
    tenant, link = create_tenant(slug, "Walker Tenant", "enterprise", f"first@{slug}.example", tier="pool")
    ref = TenantRef.of(tenant)
    admin, member = factory.admin(ref), factory.user(ref, name="Walked Member")
    order = factory.order(ref, number=1, customer="Walked Customer")
    with tenant_context(ref):
        token_row, secret = tokens.create("walker", list(tokens.SCOPES), None, factory.principal(ref, admin))
    domain = TenantDomain(tenant_id=tenant.id, domain=f"{slug}.walk.example", verification_token="t" * 32)
    change = PlanRequest(tenant_id=tenant.id, from_plan="enterprise", to_plan="professional", requested_by="walker")
    message = mail.send(f"first@{slug}.example", "Walker", "A message.", tenant_id=tenant.id)
    db.session.add_all([domain, change])
    db.session.flush()
    override = plan_services.set_override(tenant, "limit:max_users", "100", None, "walking", SYSTEM)
    job = factory.export_job(ref)
    suspended = factory.tenant(plan="basic")
    states.suspend(db.session.get(Tenant, suspended.id), "walking", SYSTEM)
    ids = {"tenant_id": tenant.id, "user_id": member.id, "order_id": order.id, "job_id": job.id,
           "key": factory.role(ref, "walker-role", {"orders.view"}), "token_id": token_row.id, "domain_id": domain.id,
           "action": "role", "code": "basic", "override_id": override.id, "request_id": change.id,
           "decision": "approve", "message_id": message.id, "token": link,
           "event_id": db.session.execute(select(AuditEvent.id).where(AuditEvent.tenant_id == tenant.id)
                                          .limit(1)).scalar_one()}
    with open(export_file(job), "rb") as archive:
        archive = archive.read()
    db.session.commit()
    staff, superadmin = app.test_client(), factory.staff("superadmin")
    sign_in_staff(staff, superadmin)
    sign_in_tenant(client, ref, admin)
    # Staff management: a member to act on, and an open invitation to the console.
    invited = staff_services.invite(f"walked-{slug}@staff.example", "operator", SYSTEM)
    ids.update(staff_id=factory.staff("operator").id, invitation=invited.link.rsplit("/", 1)[1])
    return {"tenant": ref, "ids": ids, "staff": staff, "admin": client, "token": secret, "archive": archive,
            "email": {"staff": superadmin.email, "tenant": admin.email},
            "extra_pages": [f"/admin/tenants/{suspended.id}"]}


class _Errors(logging.Handler):
    """The exceptions the app logs (portal/errors.py), to name a 5xx's cause."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def clear(self):
        self.records.clear()


@pytest.fixture()
def walker(app, conn, world, redis_client, servers):
    errors, logger = _Errors(), logging.getLogger("portal.errors")
    logger.addHandler(errors)

    def reset():  # what a rolled-back change leaves in caches
        app.extensions["portal.tenant_lookup"].clear_local()
        entitlements.forget()
        clear_redis(redis_client, servers.redis_prefix)

    yield Walker(app, conn, world, errors, reset)
    logger.removeHandler(errors)


@pytest.mark.parametrize("blueprint", BLUEPRINTS)
def test_hostile_input_is_refused_clearly_and_changes_nothing(app, walker, blueprint):
    walked = rules(app, {blueprint})
    assert walked, f"no routes in {blueprint}"
    for rule in walked:
        walker.walk(rule)
    print("\n".join(walker.notes))
    assert not walker.problems, f"{len(walker.problems)} problem(s) in {blueprint}:\n" + "\n".join(walker.problems)


def test_every_api_route_with_a_body_has_a_sample(app):
    """A new API write route fails here until it has a valid body to corrupt (its whole-body
    walk needs none and runs anyway)."""
    for rule in rules(app, {"api"}):
        if rule.methods & {"POST", "PUT", "PATCH"}:
            assert rule.endpoint in API_SAMPLES, f"{rule.endpoint}: add a valid body to API_SAMPLES"


HOSTS = {"nul": "a\x00b." + BASE_DOMAIN, "nul-custom-domain": "a\x00b.example.com",
         "control": "\x01\x02." + BASE_DOMAIN, "label-64": "a" * 64 + "." + BASE_DOMAIN,
         "label-300": "a" * 300 + "." + BASE_DOMAIN, "label-300-custom-domain": "a" * 300 + ".example.com",
         "long": "x" * 10_000, "confusable": "\u0410dmin." + BASE_DOMAIN, "empty": "",
         "huge-port": "localhost:99999999999999999999", "negative-port": "localhost:-1", "dots": "..",
         "space": "a b." + BASE_DOMAIN, "userinfo": "user@localhost", "whitespace": "a\tb\nc\rd"}


def test_hostile_host_header(client, factory):
    """Whatever the Host header says: no 5xx (nor an exception out of the WSGI middleware),
    on the tenant, staff and API faces."""
    tenant = factory.tenant()
    problems = []
    for name, host in HOSTS.items():
        for path in ("/", "/login", "/admin/login", "/api/v1/status", f"/t/{tenant.slug}/login"):
            response = open_(client, path, environ_overrides={"HTTP_HOST": host})
            if response.status_code >= 500:
                problems.append(f"GET {path} Host={name} -> {response.status_code}{getattr(response, 'raised', '')}")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


def test_hostile_tenant_header(client, world):
    """X-Tenant-ID with every corpus value (and NUL), alone and beside a token: no 5xx."""
    problems = []
    for value_name, value in {**QUERY_CORPUS, "nul": "a\x00b"}.items():
        for headers in ({}, {"Authorization": f"Bearer {world['token']}"}):
            response = open_(client, "/api/v1/me", headers=headers, environ_overrides={"HTTP_X_TENANT_ID": value})
            if response.status_code >= 500:
                problems.append(f"GET /api/v1/me X-Tenant-ID={value_name} token={bool(headers)} "
                                f"-> {response.status_code}{getattr(response, 'raised', '')}")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)
