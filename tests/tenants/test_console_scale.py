"""The tenant list at many tenants (issue 15): keyset pages walked in every sort and both
directions (every tenant exactly once, ties in the sort column included), the last page,
a cursor past either end or unreadable, search through its index (trigram, and the
prefix fallback), and the CSV export equal to the filtered list."""
import csv
import importlib.util
import io
import os
import re
import uuid

import pytest
from sqlalchemy import create_engine, text

from portal.extensions import db
from tests.factories import sign_in_staff

N = 120
PAGE = 7
MIGRATION = os.path.join(os.path.dirname(__file__), "..", "..", "migrations", "registry", "versions",
                         "0013_console_search.py")


@pytest.fixture()
def many(app, conn, monkeypatch):
    """N tenants `<prefix>-NNN` made in the test's transaction in one statement: names,
    plans, statuses and creation times repeat (ties in every sort column but slug)."""
    prefix = "zk" + uuid.uuid4().hex[:6]
    db.session.execute(text("""
        INSERT INTO registry.tenants (id, slug, name, status, tier, plan_code, created_at)
        SELECT gen_random_uuid(), :p || '-' || lpad(i::text, 3, '0'), 'Company ' || (i % 10),
               (array['active', 'suspended', 'archived'])[1 + i % 3], 'pool',
               (array['basic', 'professional', 'enterprise'])[1 + i % 3],
               timestamptz '2026-01-01' + (i % 5) * interval '1 day'
        FROM generate_series(1, :n) i"""), {"p": prefix, "n": N})
    db.session.flush()
    monkeypatch.setitem(app.config, "PAGE_SIZE", PAGE)
    return prefix


@pytest.fixture()
def staff(client, factory):
    sign_in_staff(client, factory.staff("viewer"))
    return client


def _slugs(body, prefix):
    return re.findall(rf">({prefix}-\d{{3}})</a>", body)


def _link(body, rel):
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', body)
    return found.group(1).replace("&amp;", "&") if found else None


def _expected(prefix, sort, direction, where="true"):
    column = {"slug": "slug", "name": "lower(name)", "created": "created_at", "plan": "plan_code",
              "status": "status"}[sort]
    return db.session.execute(text(
        f"SELECT slug FROM registry.tenants WHERE slug LIKE :p AND {where} "
        f"ORDER BY {column} {direction}, id {direction}"), {"p": prefix + "-%"}).scalars().all()


@pytest.mark.parametrize("sort", ["slug", "name", "created", "plan", "status"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_next_and_previous_walk_every_tenant_once_in_order(staff, many, sort, direction):
    url = f"/admin/tenants?q={many}&sort={sort}&dir={direction}"
    seen, pages = [], []
    while url:
        body = staff.get(url).get_data(as_text=True)
        assert f"shown of {N}" in body
        pages.append(_slugs(body, many))
        seen += pages[-1]
        url = _link(body, "next")
        assert len(pages) <= N // PAGE + 1
    assert seen == _expected(many, sort, direction)  # each once, in the database's order
    assert all(len(p) == PAGE for p in pages[:-1])
    # And back from the last page by Previous: the same pages (the first one whole).
    body = staff.get(f"/admin/tenants?q={many}&sort={sort}&dir={direction}&last=1").get_data(as_text=True)
    back = [_slugs(body, many)]
    assert back[0] == seen[-PAGE:] and _link(body, "next") is None
    while (url := _link(body, "prev")):
        body = staff.get(url).get_data(as_text=True)
        back.append(_slugs(body, many))
    # Each Previous page is the PAGE rows just before; at the start, the first page whole
    # (it may overlap the page after it).
    assert back[-1] == seen[:PAGE]
    tail = [s for page in reversed(back[:-1]) for s in page]
    assert tail == seen[len(seen) - len(tail):] and len(tail) >= len(seen) - PAGE


def test_filters_stay_on_every_page(staff, many):
    url = f"/admin/tenants?q={many}&status=suspended&plan=professional&sort=created&dir=desc"
    seen = []
    while url:
        body = staff.get(url).get_data(as_text=True)
        seen += _slugs(body, many)
        url = _link(body, "next")
        if url:
            assert "status=suspended" in url and "plan=professional" in url and "sort=created" in url
    assert seen == _expected(many, "created", "desc", "status = 'suspended' AND plan_code = 'professional'")


@pytest.mark.parametrize("args", [
    "after=nonsense", "before=nonsense", "after=x,not-a-uuid", "sort=created&after=yesterday," + str(uuid.uuid4()),
    "sort=created&after=2026-01-01T00:00:00," + str(uuid.uuid4()),  # no time zone
    "after=" + "x" * 5000, "after=a%00b," + str(uuid.uuid4()), "sort=evil&dir=sideways&last=maybe",
    "q=%00&plan=%00&status=nope&tier=nope",
])
def test_a_cursor_or_sort_the_page_cannot_read_shows_the_first_page(staff, many, args):
    response = staff.get(f"/admin/tenants?q={many}&{args}" if "q=" not in args else f"/admin/tenants?{args}")
    if "%00" in args:  # the request pipeline refuses a NUL in the URL before any view: a clean 400
        assert response.status_code in (200, 400)
        return
    assert response.status_code == 200
    if "q=" not in args:
        sort = "created" if "sort=created" in args else "slug"
        assert _slugs(response.get_data(as_text=True), many) == _expected(many, sort, "asc")[:PAGE]


def test_a_cursor_past_either_end_shows_the_last_or_first_page(staff, many):
    expected = _expected(many, "slug", "asc")
    beyond = f"{many}-999,{uuid.uuid4()}"
    body = staff.get(f"/admin/tenants?q={many}&after={beyond}").get_data(as_text=True)
    assert _slugs(body, many) == expected[-PAGE:] and _link(body, "next") is None
    before = f"{many}-000,{uuid.uuid4()}"
    body = staff.get(f"/admin/tenants?q={many}&before={before}").get_data(as_text=True)
    assert _slugs(body, many) == expected[:PAGE] and _link(body, "prev") is None
    # Previous from the second page: the first page, whole.
    second = staff.get(_link(staff.get(f"/admin/tenants?q={many}").get_data(as_text=True), "next"))
    body = staff.get(_link(second.get_data(as_text=True), "prev")).get_data(as_text=True)
    assert _slugs(body, many) == expected[:PAGE]


def test_search_matches_slug_or_name_anywhere_through_the_trigram_index(app, staff, many):
    from portal.tenants import listing

    assert listing.search_mode() == "trigram"
    body = staff.get(f"/admin/tenants?q={many[3:]}-04&dir=desc").get_data(as_text=True)  # the middle of a slug
    assert _slugs(body, many) == [f"{many}-049", f"{many}-048", f"{many}-047", f"{many}-046", f"{many}-045",
                                  f"{many}-044", f"{many}-043"]
    body = staff.get(f"/admin/tenants?q={many}&plan=basic&sort=name").get_data(as_text=True)
    assert "shown of 40" in body
    assert staff.get("/admin/tenants?q=pany 7").status_code == 200  # in a name, case aside
    db.session.execute(text("SET LOCAL enable_seqscan = off"))  # the table is small: ask what the index can do
    plan = "\n".join(db.session.execute(text(
        "EXPLAIN SELECT id FROM registry.tenants WHERE slug LIKE :p OR lower(name) LIKE :p"),
        {"p": f"%{many[2:]}%"}).scalars())
    assert "ix_tenants_slug_trgm" in plan and "ix_tenants_name_trgm" in plan and "Bitmap Index Scan" in plan


def _migration():
    spec = importlib.util.spec_from_file_location("migration_0013", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_pg_trgm_the_migration_makes_prefix_indexes(servers):
    """Where the server will not make pg_trgm, 0013 makes btree indexes on lower(slug) and
    lower(name) instead, and they serve prefix search. Built on a copy of the registry's
    table in a scratch schema (as the owner, in a transaction rolled back here): dropping
    the real table's indexes would wait on every other session that reads it."""
    engine = create_engine(servers.owner_url)
    scratch = f"scratch_{uuid.uuid4().hex[:8]}"
    try:
        with engine.connect() as owner:
            outer = owner.begin()
            owner.execute(text(f"CREATE SCHEMA {scratch}"))
            owner.execute(text(f"CREATE TABLE {scratch}.tenants (LIKE registry.tenants)"))  # no indexes
            owner.execute(text(f"INSERT INTO {scratch}.tenants SELECT * FROM registry.tenants"))
            assert _migration().create_search_indexes(owner, trigram=False, schema=scratch) == "prefix"
            owner.execute(text("SET LOCAL enable_seqscan = off"))  # the table is small: what can the index do
            plan = "\n".join(owner.execute(text(
                f"EXPLAIN SELECT id FROM {scratch}.tenants WHERE lower(slug) LIKE 'zk%' OR lower(name) LIKE 'zk%'"
            )).scalars())
            assert "ix_tenants_slug_prefix" in plan and "ix_tenants_name_prefix" in plan
            found = owner.execute(text(f"SELECT to_regclass('{scratch}.ix_tenants_slug_trgm') IS NULL, "
                                       f"to_regclass('{scratch}.ix_tenants_slug_prefix') IS NOT NULL")).one()
            assert found == (True, True)  # what listing.search_mode reads (in the registry's schema)
            outer.rollback()
    finally:
        engine.dispose()


def test_prefix_search_when_the_fallback_indexes_are_the_ones(app, staff, many, monkeypatch):
    """With the fallback's indexes, search matches a slug or name from its start."""
    monkeypatch.setitem(app.extensions, "portal.tenant_search_mode", "prefix")
    body = staff.get(f"/admin/tenants?q={many}-04").get_data(as_text=True)
    assert len(_slugs(body, many)) == PAGE and "shown of 10" in body and "starts with" in body
    assert "shown of" not in staff.get(f"/admin/tenants?q={many[2:]}").get_data(as_text=True)  # not from the start
    assert f"{many}-001" in staff.get(f"/admin/tenants?q={many}-00&sort=name").get_data(as_text=True)


def test_keyset_indexes_exist(conn):
    names = set(db.session.execute(text(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'registry' AND tablename = 'tenants'")).scalars())
    assert {"ix_tenants_keyset_name", "ix_tenants_keyset_created", "ix_tenants_keyset_plan",
            "ix_tenants_keyset_status", "ix_tenants_slug_trgm", "ix_tenants_name_trgm"} <= names


def _csv(staff, query):
    response = staff.get(f"/admin/tenants.csv?{query}")
    assert response.status_code == 200 and response.mimetype == "text/csv" and response.is_streamed
    assert response.headers["Content-Disposition"].startswith('attachment; filename="tenants-')
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_is_the_filtered_list_in_its_order(staff, many, monkeypatch):
    from portal.tenants import listing

    monkeypatch.setattr(listing, "CSV_BATCH", 3)  # many batches from the server-side cursor
    rows = _csv(staff, f"q={many}&status=active&sort=name&dir=desc")
    assert rows[0] == ["id", "slug", "name", "status", "tier", "plan", "created_at", "archived_at"]
    assert [r[1] for r in rows[1:]] == _expected(many, "name", "desc", "status = 'active'")
    assert all(r[3] == "active" and r[2].startswith("Company ") for r in rows[1:])
    # What the page shows, walked: the same tenants.
    url, shown = f"/admin/tenants?q={many}&status=active&sort=name&dir=desc", []
    while url:
        body = staff.get(url).get_data(as_text=True)
        shown += _slugs(body, many)
        url = _link(body, "next")
    assert shown == [r[1] for r in rows[1:]]
    body = staff.get(f"/admin/tenants?q={many}&status=active").get_data(as_text=True)
    link = re.search(r'id="tenants-csv" href="([^"]+)"', body).group(1).replace("&amp;", "&")
    assert link.startswith("/admin/tenants.csv?") and f"q={many}" in link and "status=active" in link


def test_csv_cells_a_spreadsheet_would_run_are_quoted(staff, many):
    for n, name in enumerate(("=HYPERLINK(\"http://evil\")", "+1", "-2", "@SUM(A1)", "\tTab", "\rCR")):
        db.session.execute(text("UPDATE registry.tenants SET name = :name WHERE slug = :slug"),
                           {"name": name, "slug": f"{many}-{n + 1:03d}"})
    db.session.flush()
    rows = {r[1]: r for r in _csv(staff, f"q={many}")[1:]}
    assert [rows[f"{many}-{n:03d}"][2] for n in range(1, 7)] == [
        "'=HYPERLINK(\"http://evil\")", "'+1", "'-2", "'@SUM(A1)", "'\tTab", "'\rCR"]
    assert len(rows) == N


def test_csv_needs_a_staff_sign_in(client, many):
    response = client.get("/admin/tenants.csv")
    assert response.status_code in (302, 401, 403) and "text/csv" not in response.headers.get("Content-Type", "")
