"""What the hostile-input walker (tests/test_hostile_input.py, tests/hostile_walker.py) sends
and reads: the corpus, the forms and query arguments of pages and views, JSON documents, and
a snapshot of what a request could change."""
import inspect
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import bindparam, text

from tests.factories import PASSWORD

# Each value goes, in turn, into every field of every form (the other fields valid).
CORPUS = {
    "control": "\x01\x02",
    "whitespace": "a\tb\nc\rd",
    "long": "x" * 10_000,
    "huge": "99999999999999999999",
    "negative": "-1",
    "int32": "2147483648",
    "overflow": "1e309",
    "nan": "NaN",
    "infinity": "Infinity",
    "confusable": "\u0410dmin",  # a Cyrillic А
    "empty": "",
}
# Tried again, in a one-line <input>, under each option of each <select> above it: what a
# number means depends on them (an override's key says whether its value is a feature or a limit).
NUMBERS = ("huge", "negative", "int32", "nan", "infinity", "empty")
QUERY_CORPUS = {**CORPUS, "minus-five": "-5", "abc": "abc"}
# A lone checkbox is a flag: what it sends can only read as set (any garbage, long or a
# number) or not (empty). (A group of checkboxes sends names: permissions, scopes: all of CORPUS.)
FLAG = ("control", "long", "negative", "empty")
# Values no field may store, found in what changed (raw or JSON-escaped); "whitespace" only
# where the field is one line (an <input>, not a <textarea>).
NEVER_STORED = {"control": ("\x01", "\\u0001"), "long": ("x" * 10_000,),
                "whitespace": ("\t", "\n", "\r", "\\t", "\\n", "\\r")}

# JSON put in place of one member of an API sample body ("deep" only 100 levels here: a whole
# body 1,000 deep is one of json_bodies).
JSON_VALUES = {
    "control": '"\\u0001\\u0002"', "whitespace": '"a\\tb\\nc\\rd"', "surrogate": '"\\ud800"',
    "long": '"' + "x" * 10_000 + '"', "huge": "99999999999999999999", "negative": "-1", "int32": "2147483648",
    "overflow": "1e309", "nan": "NaN", "infinity": "Infinity", "huge-string": '"99999999999999999999"',
    "list": "[]", "object": "{}", "true": "true", "null": "null", "confusable": '"\\u0410dmin"', "empty": '""',
    "deep": '{"a":' * 100 + "1" + "}" * 100, "offset": '"1970-01-01T00:00:00+23:59"',
}
# JSON values that must not be accepted anywhere: not JSON (NaN, Infinity, 1e309 as a number,
# a lone surrogate), control characters, or unbounded (10,000 characters, 100 levels deep).
JSON_HOSTILE = {"control", "surrogate", "long", "overflow", "nan", "infinity", "deep"}
_HOLE = "@@walker-hole@@"

# A valid body of each API route that takes one: JSON has no page to read its fields from.
API_SAMPLES = {
    "api.create_order": {"customer": "Walker", "amount_cents": 1200},
    "api.update_order": {"customer": "Walker", "amount_cents": 1200, "status": "paid"},
    "api.ingest_events": {"events": [{"name": "walk", "properties": {"plan": "pro", "n": 1},
                                      "occurred_at": "2026-01-01T00:00:00+00:00"}]},
}

# A valid value for an empty field, by its name (else "Walker"); the page's own value wins.
SAMPLES = {"email": lambda: f"walker-{uuid.uuid4().hex[:8]}@example.org", "slug": lambda: f"w-{uuid.uuid4().hex[:10]}",
           "domain": lambda: f"w-{uuid.uuid4().hex[:8]}.example.org", "code": lambda: f"w{uuid.uuid4().hex[:8]}",
           "password": lambda: PASSWORD + " again", "value": lambda: "on", "capacity": lambda: "10",
           "days": lambda: "30", "minutes": lambda: "15", "until": lambda: str(date.today() + timedelta(days=30))}


@dataclass
class Field:
    name: str
    kind: str  # text, email, password, hidden, checkbox, radio, number, date, file, select, textarea, ...
    value: str = ""
    options: list = field(default_factory=list)
    checked: bool = False


@dataclass
class Form:
    action: str
    fields: list
    source: str  # the page it was found on

    def corruptible(self):
        """Names of the fields a user fills in (not the CSRF token)."""
        return list(dict.fromkeys(f.name for f in self.fields if f.name != "csrf_token"))

    def kinds(self, name):
        return {f.kind for f in self.fields if f.name == name}

    def is_flag(self, name):
        """A lone checkbox (not one of a group sharing its name)."""
        same = [f for f in self.fields if f.name == name]
        return len(same) == 1 and same[0].kind == "checkbox"

    def baseline(self, verbatim=False):
        """A valid submission (as far as the walker can tell): each field as the page has it
        (verbatim: even empty), an empty one from SAMPLES; a group of checkboxes with none
        ticked gets its first."""
        data = {}
        for f in self.fields:
            if f.kind in ("checkbox", "radio"):
                if f.checked:
                    data.setdefault(f.name, []).append(f.value or "on")
                continue
            if f.kind == "select":
                chosen = [o for o, selected in f.options if selected] or [o for o, _ in f.options[:1]]
                data[f.name] = chosen[:1]
                continue
            if f.kind == "file":
                data[f.name] = ["@file"]
                continue
            value = f.value.removeprefix("\r\n").removeprefix("\n") if f.kind == "textarea" else f.value
            data[f.name] = [value if value.strip() or verbatim else _sample(f)]
        for f in self.fields:  # a group of checkboxes (scopes, permissions): at least one
            group = [g for g in self.fields if g.name == f.name and g.kind == "checkbox"]
            if len(group) > 1 and f.name not in data:
                data[f.name] = [group[0].value or "on"]
        if len([f for f in self.fields if f.kind == "password"]) > 1:  # new password and its repeat
            for f in self.fields:
                if f.kind == "password":
                    data[f.name] = [PASSWORD + " again"]
        return data

    def selects(self):
        return [f for f in self.fields if f.kind == "select" and len(f.options) > 1]

    def selects_before(self, name):
        """The <select>s above field `name` when it is a one-line <input>: what a form asks
        first qualifies what follows (an override's key, then its value)."""
        position = next(i for i, f in enumerate(self.fields) if f.name == name)
        if self.fields[position].kind in ("select", "textarea", "checkbox", "radio", "file", "hidden"):
            return []
        return [f for f in self.selects() if self.fields.index(f) < position]


def _sample(f):
    name = f.name.lower()
    for key, make in SAMPLES.items():
        if key in name or f.kind == key:
            return make()
    if f.kind == "number":
        return "10"
    if f.kind == "date":
        return SAMPLES["until"]()
    return "Walker"


class Page(HTMLParser):
    """The forms (POST and GET), the links and the error markers of one HTML page."""

    def __init__(self, body, url):
        super().__init__(convert_charrefs=True)
        self.url, self.forms, self.get_fields, self.links, self.errors = url, [], set(), [], 0
        self._form = self._select = self._textarea = self._option = None
        self.feed(body)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "error" in (a.get("class") or "") or "aria-invalid" in a:
            self.errors += 1
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            method = (a.get("method") or "get").lower()
            self._form = Form(a.get("action") or urlsplit(self.url).path, [], self.url) if method == "post" else "get"
            if method == "post":
                self.forms.append(self._form)
        elif tag in ("input", "select", "textarea") and a.get("name") and self._form is not None:
            if "disabled" in a:
                return
            if self._form == "get":
                self.get_fields.add(a["name"])
                return
            kind = tag if tag != "input" else (a.get("type") or "text").lower()
            if kind in ("submit", "button", "reset", "image"):
                return
            f = Field(a["name"], kind, a.get("value") or "", checked="checked" in a)
            self._form.fields.append(f)
            self._select = f if tag == "select" else None
            self._textarea = f if tag == "textarea" else None
        elif tag == "option" and self._select is not None:
            self._option = [a.get("value"), "selected" in a, ""]
            self._select.options.append(self._option)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea.value += data
        if self._option is not None:
            self._option[2] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "option" and self._option is not None:
            value, selected, label = self._option
            self._select.options[-1] = (value if value is not None else label.strip(), selected)
            self._option = None
        elif tag == "select":
            self._select = None


def query_args(app, rule, page):
    """The query arguments a GET route reads: `page`, its page's GET forms and links to
    itself, and the names its view asks request.args for (read from its source)."""
    names = {"page"}
    if page is not None:
        names |= page.get_fields
        own = urlsplit(page.url).path
        for href in page.links:
            parts = urlsplit(href)
            if parts.query and (not parts.path or parts.path == own):
                names |= {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    source = inspect.getsource(app.view_functions[rule.endpoint])
    for line in source.splitlines():
        if "args" in line:
            names |= set(re.findall(r"[\"']([a-z_]{1,20})[\"']", line))
    return sorted(names)


# -- JSON ----------------------------------------------------------------------------------
def json_paths(sample, path=()):
    """Every member of `sample` (objects, lists and what they hold), as key paths."""
    items = sample.items() if isinstance(sample, dict) else enumerate(sample) if isinstance(sample, list) else ()
    for key, value in items:
        yield path + (key,)
        yield from json_paths(value, path + (key,))


def json_with(sample, path, fragment):
    """`sample` as JSON text with the member at `path` replaced by the JSON text `fragment`."""
    doc = json.loads(json.dumps(sample))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = _HOLE
    return json.dumps(doc).replace(json.dumps(_HOLE), fragment)


def with_surrogates(sample):
    """`sample` with a lone surrogate (\\ud800) at the end of every string in it."""
    if isinstance(sample, dict):
        return {k: with_surrogates(v) for k, v in sample.items()}
    if isinstance(sample, list):
        return [with_surrogates(v) for v in sample]
    return sample + "\ud800" if isinstance(sample, str) else sample


def json_bodies(sample):
    """Whole hostile documents, whatever the route wants."""
    return {"brackets": "[" * 100_000, "deep": '{"a":' * 1000 + "1" + "}" * 1000, "list": "[]",
            "string": '"Walker"', "number": "1", "true": "true", "null": "null", "nan": "NaN", "empty": "",
            "broken": "{", "wrapped": "[" + json.dumps(sample) + "]",
            "surrogates": json.dumps(with_surrogates(sample))}


# -- what changed ----------------------------------------------------------------------------
# Audit events that record the walk rather than a change: sign-ins, audited reads, the
# audit of each impersonated request.
NOISE = ("staff.sign_in", "tenant_user.sign_in", "outbox.message_read", "impersonation.request",
         "tenant.analytics_viewed")  # audited reads: a GET that records who read
# Copies of figures kept elsewhere, which a page view may take again: the snapshot Quotas
# and Top sort by (portal/quotas/figures.py) is Redis's figures, not a change.
DERIVED_TABLES = ("tenant_figures", "figure_snapshots")
_TABLES = {}


def snapshot(conn, tenant_id, full=True):
    """Every registry row (audit events but NOISE) and every tenant-data row of the tenant:
    {table: md5 of its rows} (full=False), or the set of rows as text. Read in a savepoint
    rolled back after (it sets app.tenant_id)."""
    savepoint = conn.begin_nested()
    try:
        if conn.engine.url not in _TABLES:
            _TABLES[conn.engine.url] = conn.execute(text(
                "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE' "
                "and table_schema in ('registry', 'tenant_data') and table_name <> 'alembic_version' "
                "and table_name <> all(:derived)"), {"derived": list(DERIVED_TABLES)}).all()
        conn.execute(text("select set_config('app.tenant_id', :id, true)"), {"id": str(tenant_id)})
        parts = []
        for schema, table in _TABLES[conn.engine.url]:
            where = ("where t.tenant_id = :id" if schema == "tenant_data" else
                     "where t.action not in :noise" if table == "audit_events" else "")
            rows = f'select t::text as row from "{schema}"."{table}" t {where}'
            value = "row" if full else "md5(coalesce(string_agg(row, '|' order by row), ''))"
            parts.append(f"select '{table}' as name, {value} from ({rows}) r")
        statement = text(" union all ".join(parts)).bindparams(bindparam("noise", expanding=True))
        result = conn.execute(statement, {"id": str(tenant_id), "noise": list(NOISE)}).all()
        return {f"{name}: {row}" for name, row in result} if full else dict(result)
    finally:
        savepoint.rollback()


def changes(before, after):
    """The tables with rows new or gone."""
    return sorted({row.split(":")[0] for row in after ^ before})


def stored(value_name, diff_rows, one_line):
    """Whether a never-stored value shows in the rows that changed."""
    signs = NEVER_STORED.get(value_name, ())
    if value_name == "whitespace" and not one_line:
        return False
    return any(sign in row for row in diff_rows for sign in signs)
