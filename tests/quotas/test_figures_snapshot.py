"""The snapshot Quotas and Top consumers sort by (portal/quotas/figures.py): taken again
only when older than CONSOLE_FIGURES_MAX_AGE_SECONDS, one refresh at a time, each
tenant's figures on its own row, a tenant newer than the snapshot shown as unknown, and
nothing kept of a tenant that is gone."""
import re

import pytest
from sqlalchemy import create_engine, text

from portal.extensions import db, redis_holder
from portal.quotas import figures
from portal.services import ratelimit
from portal.services.keys import tenant_key
from tests.factories import sign_in_staff


@pytest.fixture()
def staff(client, factory):
    sign_in_staff(client, factory.staff("viewer"))
    return client


def _set_api(tenant, calls):
    day, _ = ratelimit.day_window()
    redis_holder.client.set(tenant_key(tenant.id, "api", day), calls)


def _row(body, slug):
    return body.split(f">{slug}</a>")[1].split("</tr>")[0]


def _api_shown(staff, slug):
    """What Top consumers shows as `slug`'s API calls today (sorted by tenant, page by page)."""
    page, last = 1, 1
    while page <= last:
        body = staff.get(f"/admin/top?sort=tenant&dir=asc&page={page}").get_data(as_text=True)
        if f">{slug}</a>" in body:
            return re.search(r'data-measure="api">([^<]*)<', _row(body, slug)).group(1)
        pages = re.search(r"Page \d+ of (\d+)", body)
        page, last = page + 1, int(pages.group(1)) if pages else 1
    raise AssertionError(f"{slug} is on no page")


def test_the_pages_show_the_snapshot_until_it_is_older_than_the_max_age(app, staff, factory, monkeypatch):
    a, b = factory.tenant(), factory.tenant()
    _set_api(a, 111)
    _set_api(b, 222)
    assert _api_shown(staff, a.slug) == "111" and _api_shown(staff, b.slug) == "222"  # max age 0: taken at once
    monkeypatch.setitem(app.config, "CONSOLE_FIGURES_MAX_AGE_SECONDS", 3600)
    _set_api(a, 999)
    assert _api_shown(staff, a.slug) == "111"  # the snapshot is young: not taken again
    body = staff.get("/admin/quotas").get_data(as_text=True)
    assert "Figures as of" in body and "older than 3600 s" in body
    monkeypatch.setitem(app.config, "CONSOLE_FIGURES_MAX_AGE_SECONDS", 0)
    assert _api_shown(staff, a.slug) == "999" and _api_shown(staff, b.slug) == "222"  # each its own


def test_a_tenant_newer_than_the_snapshot_shows_unknown_and_sorts_last(app, staff, factory, monkeypatch):
    old = factory.tenant()
    _set_api(old, 5)
    staff.get("/admin/top")  # the snapshot, with `old` in it
    monkeypatch.setitem(app.config, "CONSOLE_FIGURES_MAX_AGE_SECONDS", 3600)
    new = factory.tenant()
    _set_api(new, 10 ** 6)
    assert _api_shown(staff, new.slug) == "unknown" and _api_shown(staff, old.slug) == "5"
    for direction in ("asc", "desc"):
        body = staff.get(f"/admin/top?sort=api&dir={direction}&page=99999").get_data(as_text=True)
        slugs = re.findall(r'<td><a href="/admin/tenants/[^"]+">([^<]+)</a></td>', body)
        assert slugs[-1] == new.slug  # unknown last, whatever the direction


def test_another_refresh_under_way_leaves_the_page_with_the_snapshot_it_has(app, staff, factory, servers):
    tenant = factory.tenant()
    _set_api(tenant, 1)
    assert figures.refresh()  # taken without the lock: this test's transaction would keep it
    _set_api(tenant, 2)
    holder = create_engine(servers.owner_url)
    try:
        with holder.connect() as other:  # another node's refresh: it holds the lock
            other.begin()
            assert other.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                 {"key": figures.REFRESH_LOCK}).scalar_one()
            assert _api_shown(staff, tenant.slug) == "1"  # not waiting, not refreshed
            other.rollback()
    finally:
        holder.dispose()
    assert _api_shown(staff, tenant.slug) == "2"


def test_refresh_keeps_nothing_of_a_tenant_no_longer_served(app, conn, factory):
    served, archived = factory.tenant(), factory.tenant()
    assert figures.refresh()
    db.session.execute(text("UPDATE registry.tenants SET status = 'archived' WHERE id = :id"), {"id": archived.id})
    assert figures.refresh()
    kept = set(db.session.execute(text("SELECT tenant_id FROM registry.tenant_figures")).scalars())
    assert served.id in kept and archived.id not in kept
    db.session.execute(text("DELETE FROM registry.tenants WHERE id = :id"), {"id": served.id})  # cascades
    assert db.session.execute(text("SELECT count(*) FROM registry.tenant_figures WHERE tenant_id = :id"),
                              {"id": served.id}).scalar_one() == 0
