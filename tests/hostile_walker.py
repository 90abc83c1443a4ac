"""The hostile-input walker itself (tests/test_hostile_input.py says what it checks)."""
import io
import re
import uuid
from contextlib import contextmanager
from urllib.parse import quote, urlencode, urlsplit

from itsdangerous import BadSignature
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Response

from portal.tenancy.context import tenant_context
from tests.factories import PASSWORD
from tests.hostile import (
    API_SAMPLES,
    CORPUS,
    FLAG,
    JSON_HOSTILE,
    JSON_VALUES,
    NUMBERS,
    QUERY_CORPUS,
    Page,
    changes,
    json_bodies,
    json_paths,
    json_with,
    query_args,
    snapshot,
    stored,
)
from tests.routes import STAFF_BLUEPRINTS, TENANT_BLUEPRINTS, fill, rules

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class Walker:
    """Walks routes of the URL map as their users, one request at a time in a savepoint, and
    collects a line for each answer that breaks the rules (tests/test_hostile_input.py)."""

    def __init__(self, app, conn, world, errors, reset):
        self.app, self.conn, self.world, self.errors, self.reset = app, conn, world, errors, reset
        self.tenant, self.ids = world["tenant"], world["ids"]
        self.prefix = f"/t/{self.tenant.slug}"
        self.problems, self.notes, self.pages = [], [], {}
        self.queried = set()
        self.before = snapshot(conn, self.tenant.id)
        self.before_sums = snapshot(conn, self.tenant.id, full=False)
        self.adapter = app.url_map.bind("localhost")

    # -- where a rule is, and as whom -------------------------------------------------------
    def realm(self, rule):
        """(client, path prefix, headers) to reach `rule` as its user."""
        blueprint = rule.endpoint.split(".")[0]
        if blueprint == "api":
            return self.app.test_client(), "", {"Authorization": f"Bearer {self.world['token']}"}
        if blueprint == "auth":
            staff_page = rule.endpoint.startswith("auth.staff_")
            return self.app.test_client(), "" if staff_page else self.prefix, {}
        if blueprint in STAFF_BLUEPRINTS:
            return self.world["staff"], "", {}
        return self.world["admin"], self.prefix, {}

    def walk(self, rule):
        """Every way `rule` takes input, with the corpus."""
        client, prefix, headers = self.realm(rule)
        url = prefix + fill(rule, self.ids)
        methods = rule.methods & (WRITES | {"GET"})
        if "GET" in methods and rule.endpoint not in self.queried:  # one view reads the same arguments
            self.queried.add(rule.endpoint)
            self.walk_query(rule, client, url, headers)
        for method in sorted(methods & WRITES):
            if rule.endpoint.startswith("api."):
                self.walk_json(rule, method, url, headers)
            else:
                forms = self.forms_for(rule, client, prefix)
                if not forms:
                    self.notes.append(f"{rule.endpoint}: no form on any page (its path arguments are walked)")
                for form in forms:
                    self.walk_form(rule, client, form)
        for arg in sorted(rule.arguments):
            for method in sorted(methods):
                self.walk_path(rule, client, prefix, headers, method, arg)

    # -- forms --------------------------------------------------------------------------------
    def page(self, client, url):
        """The page at `url` as `client` sees it (its forms carry that client's CSRF token,
        which the GET may just have put in its session: its cookies are kept)."""
        key = (client, url)
        if key not in self.pages:
            savepoint = self.conn.begin_nested()  # the walk's GETs leave nothing behind
            try:
                response = open_(client, url)
                html = response.status_code == 200 and "html" in response.content_type
                self.pages[key] = Page(response.get_data(as_text=True), url) if html else None
            finally:
                savepoint.rollback()
        return self.pages[key]

    def candidate_pages(self, rule, prefix):
        """GET pages of the rule's realm: its own URL first, then its blueprint's, then the rest."""
        blueprint = rule.endpoint.split(".")[0]
        realm = STAFF_BLUEPRINTS if blueprint in STAFF_BLUEPRINTS else TENANT_BLUEPRINTS
        if blueprint == "auth":
            realm = {"auth"}
        gets = [r for r in rules(self.app, realm) if "GET" in r.methods]
        gets.sort(key=lambda r: (r.rule != rule.rule, r.endpoint.split(".")[0] != blueprint, r.rule))
        urls = [prefix + fill(r, self.ids) for r in gets]
        return urls + (self.world["extra_pages"] if realm is STAFF_BLUEPRINTS else [])

    def forms_for(self, rule, client, prefix):
        """The forms whose action is `rule`, from every page of its realm: one of each set of
        fields (the same form for another object, or another action, is walked once)."""
        found = {}
        for url in self.candidate_pages(rule, prefix):
            page = self.page(client, url)
            for form in page.forms if page else ():
                if self.rule_of(form.action, prefix) is rule:
                    found.setdefault(tuple(form.corruptible()), form)
        return list(found.values())

    def rule_of(self, action, prefix):
        path = urlsplit(action).path
        if prefix and path.startswith(prefix + "/"):
            path = path[len(prefix):]
        try:
            return self.adapter.match(path, method="POST", return_rule=True)[0]
        except (HTTPException, RequestRedirect):
            return None

    def walk_form(self, rule, client, form):
        base = self.valid_request(client, form)
        if base is None:
            self.notes.append(f"{rule.endpoint}: no valid request found; corrupting the page's own values")
            base = form.baseline()
        for name in form.corruptible():
            kinds = form.kinds(name)
            targets = [name]
            if "password" in kinds:  # a new password and its repeat are corrupted together
                targets = [f.name for f in form.fields if f.kind == "password"]
            variants = [({}, list(FLAG if form.is_flag(name) else CORPUS))]
            for select_field in form.selects_before(name):
                variants += [({select_field.name: [option]}, NUMBERS)
                             for option, _ in select_field.options if [option] != base[select_field.name]]
            for extra, values in variants:
                for value_name in values:
                    data = {**base, **extra}
                    for target in targets:
                        data[target] = [CORPUS[value_name]]
                    where = f" with {extra}" if extra else ""
                    self.submit(client, form, data, f"POST {form.action} {name}={value_name}{where}",
                                hostile=value_name, one_line="textarea" not in kinds)

    def valid_request(self, client, form):
        """The page's own values (as they are, then with empty ones filled in, then each
        filled one left empty again, for an optional field), else those with one <select> set
        to another option; a sign-in form with the walker's own credentials. The first the
        portal accepts is what each field's corruption starts from."""
        verbatim, base = form.baseline(verbatim=True), form.baseline()
        known = {name: [value] for name, value in self.credentials(form).items() if name in base}
        candidates = [{**base, **known}] if known else []
        candidates += [verbatim, base]
        candidates += [{**base, name: verbatim[name]} for name in base if base[name] != verbatim[name]]
        candidates += [{**base, s.name: [option]} for s in form.selects() for option, _ in s.options
                       if [option] != base[s.name]]
        tried = []
        for data in candidates:
            if data in tried:
                continue
            tried.append(data)
            if self.submit(client, form, data, f"POST {form.action} (valid)", hostile=False):
                return data
        return None

    def credentials(self, form):
        """Who the walker signs in as on the form's side (for the sign-in forms)."""
        side = "tenant" if form.action.startswith(self.prefix + "/") else "staff"
        return {"email": self.world["email"][side], "password": PASSWORD}

    def submit(self, client, form, data, label, hostile, one_line=True):
        return self.attempt(client, "POST", form.action, label, hostile=hostile, one_line=one_line,
                            source=form.source, data=self.payload(form, data))

    def payload(self, form, data):
        """`data` as the test client sends it: a file field's "@file" is the world's export archive,
        any other value in a file field is the content of the file."""
        files = {f.name for f in form.fields if f.kind == "file"}
        payload = {}
        for name, values in data.items():
            if name in files:
                content = self.world["archive"] if values == ["@file"] else values[0].encode("utf-8")
                payload[name] = (io.BytesIO(content), "walker.zip")
            else:
                payload[name] = values
        return payload

    # -- JSON -----------------------------------------------------------------------------
    def walk_json(self, rule, method, url, headers):
        client = self.app.test_client()
        sample = API_SAMPLES.get(rule.endpoint)
        bodies = {f"body={name}": (body, name in ("brackets", "deep", "nan", "surrogates"))
                  for name, body in json_bodies(sample or {}).items()}
        if sample is None and method == "DELETE":
            bodies = {}
        for path in json_paths(sample or {}):
            where = ".".join(str(p) for p in path)
            for value_name, fragment in JSON_VALUES.items():
                bodies[f"{where}={value_name}"] = (json_with(sample, path, fragment), value_name in JSON_HOSTILE)
        for label, (body, hostile) in bodies.items():
            self.attempt(client, method, url, f"{method} {url} {label}", hostile=hostile, json_api=True,
                         data=body, content_type="application/json", headers=headers)

    # -- paths and queries ----------------------------------------------------------------------
    def walk_path(self, rule, client, prefix, headers, method, arg):
        """Each corpus value in place of one path argument (the rest real, the body valid)."""
        urls = {name: prefix + _fill(rule, {**self.ids, arg: quote(value, safe="")}) for name, value in CORPUS.items()}
        if method == "GET":
            with self.reads(f"GET {rule.rule} <{arg}>=..."):
                for value_name, url in urls.items():
                    self.read(client, url, f"GET {rule.rule} <{arg}>={value_name}", headers)
            return
        forms = self.forms_for(rule, client, prefix) if not rule.endpoint.startswith("api.") else []
        for value_name, url in urls.items():
            if rule.endpoint in API_SAMPLES:
                kwargs = {"json": API_SAMPLES[rule.endpoint]}
            elif rule.endpoint.startswith("api."):
                kwargs = {}
            else:  # a fresh body each time: a file in it is read once
                kwargs = {"data": self.payload(forms[0], forms[0].baseline()) if forms
                          else {"csrf_token": self.any_csrf(client)}}
            self.attempt(client, method, url, f"{method} {rule.rule} <{arg}>={value_name}", hostile=value_name,
                         follow_merge=True, headers=headers, **kwargs)

    def any_csrf(self, client):
        """A CSRF token of `client` (for a route whose form the walk did not find)."""
        for (who, _url), page in self.pages.items():
            for form in page.forms if page and who is client else ():
                for f in form.fields:
                    if f.name == "csrf_token":
                        return f.value
        return ""

    def walk_query(self, rule, client, url, headers):
        page = self.page(client, url) if not rule.endpoint.startswith("api.") else None
        with self.reads(f"GET {rule.rule}?..."):
            for arg in query_args(self.app, rule, page):
                for value_name, value in QUERY_CORPUS.items():
                    self.read(client, f"{url}?{urlencode({arg: value})}", f"GET {rule.rule}?{arg}={value_name}",
                              headers)

    @contextmanager
    def reads(self, label):
        """GETs in one savepoint: none of them may change anything."""
        savepoint = self.conn.begin_nested()
        try:
            yield
            diff = self.changed() and changes(self.before, snapshot(self.conn, self.tenant.id))
            if diff:
                self.problems.append(f"{label} -> GETs changed {', '.join(diff)}")
        finally:
            savepoint.rollback()
            self.reset()

    def read(self, client, url, label, headers):
        self.errors.clear()
        cookies = dict(client._cookies)
        response = open_(client, url, headers=headers)
        _restore(client, cookies)
        problem = None
        if response.status_code >= 500:
            problem = f"{response.status_code}{self.logged(response)}"
        elif response.status_code in (301, 302, 303, 307, 308) and "/login" in response.headers["Location"] \
                and "/login" not in url:
            problem = f"{response.status_code} to {response.headers['Location']}: the sign-in was lost"
        if problem:
            self.problems.append(f"{label} -> {problem}")

    # -- one write, judged ------------------------------------------------------------------------
    def attempt(self, client, method, url, label, hostile, one_line=True, json_api=False, source=None,
                follow_merge=False, **kwargs):
        """Send one write in a savepoint, judge it, roll it back. Returns whether it was accepted
        (it changed something, or said it had nothing to change)."""
        cookies = dict(client._cookies)
        changed = None
        savepoint = self.conn.begin_nested()
        self.errors.clear()
        try:
            response = open_(client, url, method, **kwargs)
            if follow_merge and response.status_code in (307, 308):  # werkzeug's merge of "//" in a path
                response = open_(client, response.headers["Location"], method, **kwargs)
            flashes, signed_in = self.session_state(client)
            after = snapshot(self.conn, self.tenant.id) if self.changed() else self.before
            changed = after != self.before or signed_in
            problem = self.judge(response, flashes, after, changed, hostile, one_line, json_api)
            if problem is None and changed:
                problem = self.probe(client, response, source, json_api)
            if problem:
                self.problems.append(f"{label} -> {problem}")
            return problem is None and (changed or bool(flashes & {"success", "info"}) and "error" not in flashes)
        finally:
            if savepoint.is_active:
                savepoint.rollback()
            _restore(client, cookies)
            if changed is not False:  # what the change left in caches
                self.reset()

    def judge(self, response, flashes, after, changed, hostile, one_line, json_api):
        status = response.status_code
        if status >= 500:
            return f"{status}{self.logged(response)}"
        if hostile is False:  # the walker's own valid request: whatever the portal makes of it
            return None
        location = response.headers.get("Location", "")
        page = Page(response.get_data(as_text=True), "/") if "html" in response.content_type else None
        errors = bool(page and page.errors) or "error" in flashes
        if changed:
            diff = after - self.before
            what = ", ".join(sorted({row.split(":")[0] for row in diff ^ (self.before - after)})) or "a sign-in"
            if status >= 400 or (errors and status != 201):
                return f"{status}, refused, yet it changed {what}"
            if hostile and (json_api or stored(hostile, diff, one_line)):
                return f"{status}, accepted: stored in {what}"
            return None
        if 400 <= status < 500 or errors:
            return None
        if "/login" in location:
            return f"{status} to {location}: the sign-in was lost"
        if flashes & {"success", "info"}:
            return None  # accepted, and there was nothing to change
        return f"{status}{' to ' + location if location else ''}: silent, no message and nothing changed"

    def probe(self, client, response, source, json_api):
        """After an accepted change: the pages that show it still answer."""
        urls = [(self.world["admin"], self.prefix + "/"), (self.world["staff"], f"/admin/tenants/{self.tenant.id}")]
        location = response.headers.get("Location", "")
        if location and not urlsplit(location).netloc:
            urls.insert(0, (client, location))
        if source:
            urls.insert(0, (client, source))
        if json_api:  # the API's own reads
            urls += [(client, r.rule) for r in rules(self.app, {"api"}) if "GET" in r.methods and not r.arguments]
        for who, url in dict.fromkeys(urls):
            cookies = dict(who._cookies)
            headers = {"Authorization": f"Bearer {self.world['token']}"} if "/api/" in url else {}
            answer = open_(who, url, headers=headers)
            _restore(who, cookies)
            if answer.status_code >= 500:
                return f"accepted, then GET {url} answers {answer.status_code}{self.logged(answer)}"
        return None

    # -- helpers -------------------------------------------------------------------------------
    def changed(self):
        """Whether any table differs from the start (by a checksum of each table's rows)."""
        return snapshot(self.conn, self.tenant.id, full=False) != self.before_sums

    def session_state(self, client):
        """The categories flashed by the last answer, and whether the client is now signed in
        (for the anonymous client of the auth forms): read from its session cookies, one per
        realm (portal/auth/principals.py), without touching them."""
        flashes, signed_in = set(), False
        interface = self.app.session_interface
        for cookie in client._cookies.values():
            name = cookie.key.removeprefix(self.app.config["SESSION_COOKIE_NAME"] + "_")
            if name == cookie.key or name not in ("staff", f"t{self.tenant.id.hex}"):
                continue
            with tenant_context(self.tenant if name != "staff" else None):
                try:
                    session = interface.get_signing_serializer(self.app).loads(cookie.value)
                except BadSignature:
                    continue
            flashes |= {category for category, _ in session.get("_flashes", [])}
            signed_in |= "_user_id" in session
        return flashes, signed_in and client not in (self.world["staff"], self.world["admin"])

    def logged(self, response=None):
        """The exception behind a 5xx: raised out of the app, or the last one it logged."""
        if getattr(response, "raised", None):
            return response.raised
        for record in reversed(self.errors.records):
            if record.exc_info:
                return f" ({_described(record.exc_info[1])})"
        return ""


def _fill(rule, values):
    """The rule's path with `values` (an empty one stays empty: tests.routes.fill would put a uuid)."""
    path = rule.rule
    for arg in rule.arguments:
        path = re.sub(rf"<(?:[^:>]+:)?{arg}>", str(values[arg]) if arg in values else str(uuid.uuid4()), path)
    return path


def _restore(client, cookies):
    """Put back the client's cookies as they were: whatever an answer set (a flashed message,
    a sign-in, an impersonation) is gone for the next request."""
    client._cookies.clear()
    client._cookies.update(cookies)


def open_(client, url, method="GET", **kwargs):
    """The answer to one request; an exception that escapes the app (one raised in the WSGI
    middleware, before Flask's error handlers) is what a server answers with 500."""
    try:
        return client.open(url, method=method, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any exception out of the app is a server error
        response = Response("", 500)
        response.raised = f" (raised {_described(exc)})"
        return response


def _described(exc):
    """An exception as one line: its type, message and the innermost line of the portal's own
    code it passed through (else the innermost line of all)."""
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    ours = [f for f in frames if "/portal/" in f.tb_frame.f_code.co_filename]
    tb = (ours or frames or [None])[-1]
    where = f" at {tb.tb_frame.f_code.co_filename.split('/portal/')[-1]}:{tb.tb_lineno}" if tb is not None else ""
    message = re.sub(r"\s+", " ", str(exc)).split(" [SQL:")[0][:160]
    return f"{type(exc).__name__}: {message}{where}"
