"""Quotas and Top consumers at many tenants (issue 15): every served tenant exactly once
across the pages, in each column's order both ways, the page past the last shown as the
last, bad sort and page values answered with a clean page, limits with overrides, and a
Redis that cannot be read."""
import re
import uuid

import pytest
import redis
from sqlalchemy import text

from portal.extensions import db, redis_holder
from portal.services import ratelimit
from portal.services.keys import tenant_key
from tests.factories import sign_in_staff

N = 120
PAGE = 25
MB = 1_048_576


@pytest.fixture()
def many(app, conn, monkeypatch):
    """N served tenants `<prefix>-NNN` (one statement, in the test's transaction) with
    their Redis figures: API calls today 3·i, requests this minute 1000 − i, slow
    statements i mod 4 (ties), users measured for even i only (i), storage i/10 MB."""
    prefix = "zq" + uuid.uuid4().hex[:6]
    rows = db.session.execute(text("""
        INSERT INTO registry.tenants (id, slug, name, status, tier, plan_code)
        SELECT gen_random_uuid(), :p || '-' || lpad(i::text, 3, '0'), 'Quota ' || i,
               (array['active', 'suspended'])[1 + i % 2], 'pool',
               (array['basic', 'professional', 'enterprise'])[1 + i % 3]
        FROM generate_series(1, :n) i RETURNING id, slug"""), {"p": prefix, "n": N}).all()
    db.session.flush()
    minute, _ = ratelimit.minute_window()
    day, _ = ratelimit.day_window()
    client = redis_holder.client
    figures = {}
    for tenant_id, slug in rows:
        i = int(slug[-3:])
        figures[slug] = {"id": tenant_id, "api": 3 * i, "rpm": 1000 - i, "slow": i % 4,
                         "users": i if i % 2 == 0 else None, "storage": i * MB // 10}
        client.set(tenant_key(tenant_id, "api", day), 3 * i)
        client.set(tenant_key(tenant_id, "rpm", minute), 1000 - i)
        if i % 4:
            client.set(tenant_key(tenant_id, "slow", day), i % 4)
        if i % 2 == 0:
            client.set(tenant_key(tenant_id, "users-seen"), i)
        client.set(tenant_key(tenant_id, "storage-seen"), i * MB // 10)
    monkeypatch.setitem(app.config, "PAGE_SIZE", PAGE)
    return prefix, figures


@pytest.fixture()
def staff(client, factory):
    sign_in_staff(client, factory.staff("viewer"))
    return client


def _served():
    return db.session.execute(text(
        "SELECT count(*) FROM registry.tenants WHERE status IN ('active', 'suspended')")).scalar_one()


def _walk(staff, url):
    """Every page's tenant slugs (and the page count the pager gives), from page 1 on."""
    first = staff.get(url).get_data(as_text=True)
    pages = int(re.search(r"Page 1 of (\d+)", first).group(1)) if "Page 1 of" in first else 1
    bodies = [first] + [staff.get(f"{url}&page={n}").get_data(as_text=True) for n in range(2, pages + 1)]
    return [re.findall(r'<td><a href="/admin/tenants/[^"]+">([^<]+)</a></td>', b) for b in bodies], bodies


def _ours(slugs, prefix):
    return [s for s in slugs if s.startswith(prefix + "-")]


def _ordered(figures, name, direction):
    """Our slugs as the page orders them: known figures by value (ties by slug), unknown last."""
    known = sorted((s for s in figures if figures[s][name] is not None), key=lambda s: s)
    known.sort(key=lambda s: figures[s][name], reverse=direction == "desc")
    return known + sorted(s for s in figures if figures[s][name] is None)


@pytest.mark.parametrize("endpoint,sort,direction,figure", [
    ("quotas", "pressure", "desc", None), ("quotas", "tenant", "asc", None), ("quotas", "api", "desc", "api"),
    ("quotas", "users", "asc", "users"), ("top", "requests", "desc", "rpm"), ("top", "slow", "desc", "slow"),
    ("top", "tenant", "desc", None),
])
def test_every_served_tenant_once_across_the_pages_in_order(staff, many, endpoint, sort, direction, figure):
    prefix, figures = many
    pages, bodies = _walk(staff, f"/admin/{endpoint}?sort={sort}&dir={direction}")
    slugs = [s for page in pages for s in page]
    assert len(slugs) == len(set(slugs)) == _served()  # no cap, nobody twice
    assert all(len(p) == PAGE for p in pages[:-1]) and f"{_served()} served tenants" in bodies[0]
    ours = _ours(slugs, prefix)
    assert sorted(ours) == sorted(figures)
    if figure:
        assert ours == _ordered(figures, figure, direction)
    elif sort == "tenant":
        assert slugs == sorted(slugs, reverse=direction == "desc")
    else:  # pressure: its percent never rises down the pages
        percents = [float(p) for b in bodies for p in re.findall(r"<td><strong>([\d.]+)%</strong></td>", b)]
        assert percents == sorted(percents, reverse=True) and len(percents) == len(slugs)


@pytest.mark.parametrize("endpoint,sort,figure", [
    ("quotas", "plan", None), ("quotas", "storage", "storage"), ("quotas", "rpm", "rpm"), ("quotas", "users", "users"),
    ("top", "api", "api"), ("top", "storage", "storage"), ("top", "requests", "rpm"),
])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_each_column_sorts_both_ways(staff, many, endpoint, sort, figure, direction):
    prefix, figures = many
    pages, _ = _walk(staff, f"/admin/{endpoint}?sort={sort}&dir={direction}")
    slugs = [s for page in pages for s in page]
    if figure:
        assert _ours(slugs, prefix) == _ordered(figures, figure, direction)
    else:
        plans = dict(db.session.execute(text("SELECT slug, plan_code FROM registry.tenants")).all())
        expected = sorted(slugs, key=lambda s: (plans[s], s), reverse=direction == "desc")
        assert slugs == expected


@pytest.mark.parametrize("endpoint", ["quotas", "top"])
def test_the_page_past_the_last_shows_as_the_last(staff, many, endpoint):
    pages, bodies = _walk(staff, f"/admin/{endpoint}?sort=tenant&dir=asc")
    past = staff.get(f"/admin/{endpoint}?sort=tenant&dir=asc&page=99999")
    assert past.status_code == 200
    body = past.get_data(as_text=True)
    assert re.findall(r'<td><a href="/admin/tenants/[^"]+">([^<]+)</a></td>', body) == pages[-1]
    assert f"Page {len(pages)} of {len(pages)}" in body or len(pages) == 1


@pytest.mark.parametrize("endpoint", ["quotas", "top"])
@pytest.mark.parametrize("args", ["sort=evil&dir=sideways", "sort=&page=-3", "page=1e9", "page=abc&sort=%27--",
                                  "sort=tenant&dir=ASC;drop", "page=" + "9" * 40])
def test_a_bad_sort_or_page_gives_a_clean_page(staff, many, endpoint, args):
    response = staff.get(f"/admin/{endpoint}?{args}")
    assert response.status_code == 200 and "<table" in response.get_data(as_text=True)


def test_limits_come_with_their_overrides(staff, many, override):
    prefix, figures = many
    slug = f"{prefix}-040"  # 120 API calls today

    class Ref:  # what the override fixture needs of a tenant
        id = figures[slug]["id"]

    override(Ref, "limit:api_calls_per_day", "200")
    _, bodies = _walk(staff, "/admin/quotas?sort=tenant&dir=asc")
    row = next(b for b in bodies if f">{slug}</a>" in b).split(f">{slug}</a>")[1].split("</tr>")[0]
    assert "120 / 200" in row and "(60.0%)" in row


def test_unmeasured_figures_say_so(staff, many):
    prefix, figures = many
    body = "".join(_walk(staff, "/admin/quotas?sort=tenant&dir=asc")[1])
    row = body.split(f">{prefix}-041</a>")[1].split("</tr>")[0]  # odd: users never measured
    assert re.search(r'data-measure="users">\s*<span>not measured /', row)
    row = body.split(f">{prefix}-042</a>")[1].split("</tr>")[0]
    assert re.search(r'data-measure="users">\s*<span>42 /', row)


@pytest.mark.parametrize("endpoint", ["quotas", "top"])
def test_redis_unreadable_gives_the_page_without_figures(staff, many, monkeypatch, endpoint):
    def broken(*args, **kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(type(redis_holder.client), "pipeline", broken)
    response = staff.get(f"/admin/{endpoint}?sort=api")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Redis cannot be read" in body and many[0] in body
