"""Export and import (issue 4): a tenant's data as a zip, imported into a new tenant of
any other tier with identical checksums; tampered exports refused with the reason and
nothing made; the staff pages that start an export, download it, and import one."""
import csv
import hashlib
import io
import json
import shutil
import uuid
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from portal.analytics.events import store
from portal.extensions import db
from portal.lifecycle import exports, provisioning
from portal.models import Job, Tenant
from portal.services import jobqueue, tenant_settings
from portal.services.errors import Refused
from portal.tenancy.context import TenantRef, tenant_context
from portal.tenancy.data import TenantSetting, TenantUser
from portal.tenancy.placement import tenant_transaction
from tests.factories import PASSWORD, csrf_token, sign_in_staff, sign_in_tenant, unique_slug
from tests.lifecycle.conftest import TIER_SPECS, job_count, row_counts, tenant_count, tenant_redis_keys

SPECS = ["pool", "bridge", "silo-second"]


def _populated(factory, make_tiered, spec):
    """A tenant of `spec` with users, settings and orders; returns its Tenant row."""
    tier, placement = TIER_SPECS[spec]
    ref = make_tiered(tier, placement, plan="professional", name=f"Source Ünïcode {spec}")
    for n in range(3):
        factory.user(ref, name=f"User {n} — ‘quoted’", role="admin" if n == 0 else "member")
    factory.role(ref, "auditor", {"audit.view", "orders.view"})
    for n in range(1, 8):
        factory.order(ref, number=n, customer=f"Kunde {n} ñ \"x\"", amount_cents=n * 1001)
    with tenant_transaction(ref) as session:
        session.add(TenantSetting(tenant_id=ref.id, key="custom", value={"nested": [1, "ü", None]}, note="café"))
    # Analytics: 5 events of 2 users (their numbers, and the roll-ups' bitmaps, travel too).
    now = datetime.now(timezone.utc)
    with tenant_context(ref):
        store([{"name": "view", "user_key": f"u{n % 2}", "properties": {"n": n}, "occurred_at": now - timedelta(days=n)}
               for n in range(5)])
    return db.session.get(Tenant, ref.id)


def _placement_id(placed, spec):
    _, placement = TIER_SPECS[spec]
    return placed[placement].id if placement else None


def _import(path, spec, placed, imported, slug=None):
    tier, _ = TIER_SPECS[spec]
    tenant, job = provisioning.request_import(path, slug or unique_slug("imp"), None, None, tier=tier,
                                              placement_id=_placement_id(placed, spec))
    imported(tenant)
    jobqueue.run(job, provisioning.provision)
    db.session.refresh(tenant)
    db.session.refresh(job)
    return tenant, job


@pytest.mark.parametrize("source", SPECS)
def test_round_trip_into_every_other_tier_gives_identical_checksums(app, conn, factory, make_tiered, placed,
                                                                    imported, source):
    original = _populated(factory, make_tiered, source)
    counts = row_counts(original)
    assert counts == (4, 7, len(tenant_settings.DEFAULTS) + 1)  # the first admin + 3 users
    path, manifest = exports.write_export(original)
    assert exports.verify_export(path)["tables"] == manifest["tables"]
    assert {name: table["rows"] for name, table in manifest["tables"].items()} == {
        "users": 4, "roles": 1, "orders": 7, "settings": counts[2], "events": 5, "event_users": 2,
        "event_rollups": 10}  # 5 days: the day's "view" and its every-event roll-up
    assert manifest["tenant"]["id"] == str(original.id) and manifest["tenant"]["tier"] == original.tier
    with zipfile.ZipFile(path) as archive:
        # Every tenant table but the API tokens (credentials, not data to take away).
        assert sorted(archive.namelist()) == ["manifest.json", "tables/event_rollups.csv", "tables/event_users.csv",
                                              "tables/events.csv", "tables/orders.csv", "tables/roles.csv",
                                              "tables/settings.csv", "tables/users.csv"]

    for target in [spec for spec in SPECS if spec != source]:
        tenant, job = _import(path, target, placed, imported)
        assert job.state == "succeeded", (target, job.error)
        assert (tenant.status, tenant.tier) == ("active", TIER_SPECS[target][0])
        assert (tenant.name, tenant.plan_code) == (original.name, original.plan_code)
        # Its rows carry its own tenant id (the counts are through its own session, under RLS).
        assert row_counts(tenant) == counts
        again_path, again = exports.write_export(tenant)
        assert again["tables"] == manifest["tables"], target
        assert exports.verify_export(again_path)["tenant"]["id"] == str(tenant.id)
    # The original is untouched by the imports.
    assert row_counts(original) == counts


# -- tampered exports -------------------------------------------------------------------------
def _rewrite(path, target, change):
    """Copy the zip at `path` to `target`, with `change(members)` applied to a dict of
    member name -> bytes (delete a key to drop a member)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def _edit_first_row(member, edit):
    """Edit the first row of a table's CSV (a dict of its columns; adding a key adds a column)."""
    def change(members):
        rows = list(csv.DictReader(io.StringIO(members[member].decode(), newline="")))
        edit(rows[0])
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), restval="")
        writer.writeheader()
        writer.writerows(rows)
        members[member] = out.getvalue().encode()

    return change


def _drop_first_row(member):
    def change(members):
        lines = members[member].splitlines(keepends=True)
        members[member] = b"".join(lines[:1] + lines[2:])

    return change


def _latin1_row(member):
    def change(members):
        members[member] += "1,Kunde ñ,5\n".encode("latin-1")

    return change


def _not_a_zip(path, target):
    with open(target, "wb") as out:
        out.write(b"PK\x03\x04 this is not a zip archive at all")
    return target


TAMPERS = {
    "changed row": (lambda p, t: _rewrite(p, t, _edit_first_row(
        "tables/orders.csv", lambda r: r.update(amount_cents=str(int(r["amount_cents"]) + 1)))),
        "The checksum of orders does not match the manifest: the file was changed."),
    "removed row": (lambda p, t: _rewrite(p, t, _drop_first_row("tables/users.csv")),
                    "The checksum of users does not match the manifest: the file was changed."),
    # The files carry no tenant ids (an imported row takes the new tenant's): one smuggled in is refused.
    "row of another tenant": (lambda p, t: _rewrite(p, t, _edit_first_row(
        "tables/users.csv", lambda r: r.update(tenant_id=str(uuid.uuid4())))),
        "users has unknown columns: tenant_id."),
    "missing table": (lambda p, t: _rewrite(p, t, lambda m: m.pop("tables/settings.csv")),
                      "The table settings is missing from the export."),
    "missing manifest": (lambda p, t: _rewrite(p, t, lambda m: m.pop("manifest.json")),
                         "The archive has no manifest.json: it is not a tenant export."),
    "not a zip": (_not_a_zip, "That file is not a zip archive."),
    "not UTF-8": (lambda p, t: _rewrite(p, t, _latin1_row("tables/orders.csv")),
                  "orders is not a CSV file in UTF-8."),
}


@pytest.fixture()
def pool_export(factory, make_tiered):
    original = _populated(factory, make_tiered, "pool")
    path, manifest = exports.write_export(original)
    return original, path


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_a_tampered_export_is_refused_and_nothing_is_made(app, conn, pool_export, placed, catalogs, tmp_path,
                                                          tamper):
    original, path = pool_export
    make, reason = TAMPERS[tamper]
    tampered = make(path, str(tmp_path / "tampered.zip"))
    before, count, job_rows = catalogs(), tenant_count(), job_count()
    slug = unique_slug("tamper")
    for spec in ("bridge", "silo-second"):
        with pytest.raises(Refused) as refused:
            provisioning.request_import(tampered, slug, None, None, tier=TIER_SPECS[spec][0],
                                        placement_id=_placement_id(placed, spec))
        assert reason in refused.value.message and refused.value.field == "archive"
    assert (tenant_count(), job_count()) == (count, job_rows)
    assert db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).first() is None
    assert catalogs() == before
    assert exports.verify_export(path)  # the original is still sound


def test_a_changed_manifest_count_is_refused(app, conn, pool_export, tmp_path):
    _, path = pool_export

    def change(members):
        manifest = json.loads(members["manifest.json"])
        manifest["tables"]["orders"]["rows"] += 1
        members["manifest.json"] = json.dumps(manifest).encode()

    tampered = _rewrite(path, str(tmp_path / "count.zip"), change)
    with pytest.raises(Refused, match="The checksum of orders does not match"):
        exports.verify_export(tampered)


def _more_cents(members):
    _edit_first_row("tables/orders.csv", lambda r: r.update(amount_cents=str(int(r["amount_cents"]) + 1)))(members)


def _more_cents_and_a_manifest_that_agrees(members):
    _more_cents(members)
    manifest = json.loads(members["manifest.json"])
    manifest["tables"]["orders"]["sha256"] = hashlib.sha256(members["tables/orders.csv"]).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()


@pytest.mark.parametrize(("change", "reason"), [
    (_more_cents, "The rows of orders: "),
    (_more_cents_and_a_manifest_that_agrees, "The archive was changed since it was checked."),
], ids=["rows", "rows and manifest"])
def test_an_archive_changed_after_the_request_is_refused_at_load(app, conn, pool_export, catalogs, imported,
                                                                 tmp_path, change, reason):
    """The load step does not hash the archive again: it checks that the manifest is the
    one checked at the request, and the rows against its checksums in the database. A
    file changed in between fails the import, and nothing of it stays."""
    _, path = pool_export
    swapped = tmp_path / "swapped.zip"
    shutil.copy(path, swapped)
    before, count = catalogs(), tenant_count()
    tenant, job = provisioning.request_import(str(swapped), unique_slug("swap"), None, None, tier="bridge")
    imported(tenant)
    _rewrite(path, str(swapped), change)
    jobqueue.run(job, provisioning.provision)
    db.session.refresh(tenant)
    db.session.refresh(job)
    assert (tenant.status, tenant.failed_step) == ("failed", "load data")
    assert job.error.startswith("load data: ") and reason in job.error
    provisioning.discard(tenant)
    assert tenant_count() == count and catalogs() == before


# -- the staff pages --------------------------------------------------------------------------
@pytest.fixture()
def staff_client(client, factory):
    sign_in_staff(client, factory.staff("superadmin"))
    return client


def _token(client, url):
    page = client.get(url)
    assert page.status_code == 200
    return csrf_token(page.get_data(as_text=True))


def test_staff_export_runs_as_a_job_and_downloads_a_zip(app, staff_client, factory, make_tiered, run_jobs,
                                                        tmp_path):
    original = _populated(factory, make_tiered, "bridge")
    token = _token(staff_client, f"/admin/tenants/{original.id}")
    response = staff_client.post(f"/admin/tenants/{original.id}/export", data={"csrf_token": token})
    assert response.status_code == 302
    job = jobqueue.latest_for_tenant(original.id)
    assert (job.kind, job.state) == ("export", "queued")
    assert run_jobs() >= 1
    db.session.refresh(job)
    assert job.state == "succeeded", job.error
    download = staff_client.get(f"/admin/jobs/{job.id}/download")
    assert download.status_code == 200
    assert download.mimetype == "application/zip"
    assert "attachment" in download.headers["Content-Disposition"]
    saved = tmp_path / "downloaded.zip"
    saved.write_bytes(download.get_data())
    manifest = exports.verify_export(str(saved))
    assert manifest["tenant"]["id"] == str(original.id)
    assert manifest["tables"] == job.result["tables"]
    assert {name: t["rows"] for name, t in manifest["tables"].items()} == dict(
        zip(("users", "orders", "settings"), row_counts(original), strict=True), roles=1, events=5, event_users=2,
        event_rollups=10)
    # Another job's id, or a job that is not an export, has nothing to download.
    assert staff_client.get(f"/admin/jobs/{uuid.uuid4()}/download").status_code == 404
    provision_job = db.session.execute(select(Job).where(Job.tenant_id == original.id, Job.kind == "provision")
                                       ).scalar_one()
    assert staff_client.get(f"/admin/jobs/{provision_job.id}/download").status_code == 404


def _upload(client, data, **fields):
    form = {"slug": unique_slug("up"), "name": "", "plan": "", "tier": "bridge", "placement": ""}
    form.update(fields)
    form["csrf_token"] = _token(client, "/admin/tenants/import")
    form["archive"] = (io.BytesIO(data), "export.zip")
    return client.post("/admin/tenants/import", data=form, content_type="multipart/form-data"), form


def test_import_page_makes_the_tenant(app, staff_client, factory, make_tiered, run_jobs, imported, export_folder):
    original = _populated(factory, make_tiered, "pool")
    path, manifest = exports.write_export(original)
    with open(path, "rb") as f:
        data = f.read()
    response, form = _upload(staff_client, data, name="Imported Co")
    assert response.status_code == 302, response.get_data(as_text=True)
    tenant = db.session.execute(select(Tenant).where(Tenant.slug == form["slug"])).scalar_one()
    imported(tenant)
    assert response.headers["Location"].endswith(f"/admin/tenants/{tenant.id}")
    assert (tenant.status, tenant.tier, tenant.name) == ("provisioning", "bridge", "Imported Co")
    assert run_jobs() >= 1
    db.session.refresh(tenant)
    assert tenant.status == "active", tenant.status_reason
    assert exports.write_export(tenant)[1]["tables"] == manifest["tables"]
    # The users came with their passwords: one of them signs in to the new tenant.
    with tenant_transaction(TenantRef.of(original)) as session:
        user = session.execute(select(TenantUser).where(TenantUser.password_hash.is_not(None)).limit(1)).scalar_one()
    sign_in_tenant(staff_client, tenant, user, PASSWORD)
    assert staff_client.get(f"/t/{tenant.slug}/").status_code == 200


@pytest.mark.parametrize("tamper", ["row of another tenant", "missing table", "not a zip"])
def test_a_tampered_upload_shows_the_reason_beside_the_field(app, staff_client, pool_export, catalogs, tmp_path,
                                                             export_folder, tamper):
    _, path = pool_export
    make, reason = TAMPERS[tamper]
    with open(make(path, str(tmp_path / "t.zip")), "rb") as f:
        data = f.read()
    before, count, job_rows = catalogs(), tenant_count(), job_count()
    response, form = _upload(staff_client, data, name="Keep This Name")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert f'<p class="error" id="archive-error">{reason}' in body
    assert 'value="Keep This Name"' in body and f'value="{form["slug"]}"' in body
    assert (tenant_count(), job_count()) == (count, job_rows) and catalogs() == before
    uploads = export_folder / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []  # the upload is not kept


@pytest.mark.parametrize("target", ["pool", "bridge"])  # silo storage's undo: see test_provisioning_saga
@pytest.mark.parametrize("step", ["load data", "cache warm-up"])
def test_a_fault_while_importing_leaves_only_the_failed_tenant(app, conn, pool_export, placed, catalogs, imported,
                                                               redis_client, step, target):
    """An import is provisioning with "load data" in place of the default settings and
    first admin: a fault after the rows are loaded removes them again."""
    _, path = pool_export
    before, count = catalogs(), tenant_count()
    previous, app.config["PORTAL_FAULT_STEP"] = app.config.get("PORTAL_FAULT_STEP"), step
    try:
        tenant, job = _import(path, target, placed, imported)
    finally:
        app.config["PORTAL_FAULT_STEP"] = previous
    assert (tenant.status, tenant.failed_step) == ("failed", step)
    assert job.state == "failed" and job.error.startswith(f"{step}: ")
    assert catalogs() == before and tenant_count() == count + 1
    if tenant.tier == "pool":
        assert row_counts(tenant) == (0, 0, 0)
    assert tenant_redis_keys(redis_client, app.config["PORTAL_REDIS_PREFIX"], tenant.id, tenant.slug) == []
    provisioning.discard(tenant)
    assert tenant_count() == count and catalogs() == before
