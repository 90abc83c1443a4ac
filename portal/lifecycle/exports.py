"""A tenant's data as a zip: one JSON Lines file per table, the tenant's settings, and a
manifest with each table's row count and checksum.

The checksum of a table is the SHA-256 of its rows as canonical JSON lines, in primary
key order, *without* `tenant_id`: an export imported into another tenant (any tier) and
exported again gives the same checksums. Importing checks every table is there, every
checksum matches, and every row belongs to the exported tenant; else it refuses with the
reason and imports nothing.
"""
import hashlib
import json
import os
import uuid
import zipfile
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import delete, insert, select

from portal.extensions import db
from portal.models import WITH_STORAGE, Tenant
from portal.services import audit, jobs
from portal.services.errors import Refused
from portal.tenancy.context import TenantRef
from portal.tenancy.data import TENANT_TABLES
from portal.tenancy.placement import tenant_session, tenant_transaction

FORMAT = 1
BATCH = 2000
# API tokens are credentials of the tenant as it is: not part of its data to take away
# (an imported tenant has another id, which its tokens could not carry anyway).
EXPORTED_TABLES = [t for t in TENANT_TABLES if t.name != "api_tokens"]


def export_dir():
    path = current_app.config["PORTAL_EXPORT_DIR"]
    os.makedirs(path, exist_ok=True)
    return os.path.realpath(path)


def _to_json(value):
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _canonical(row):
    return json.dumps({k: v for k, v in row.items() if k != "tenant_id"}, sort_keys=True, separators=(",", ":"))


def _from_json(table, row, tenant_id):
    out = {}
    for column in table.columns:
        value = row.get(column.name)
        if column.name == "tenant_id":
            value = tenant_id
        elif value is not None and column.type.python_type is uuid.UUID:
            value = uuid.UUID(value)
        elif value is not None and column.type.python_type is datetime:
            value = datetime.fromisoformat(value)
        out[column.name] = value
    return out


def write_export(tenant, progress=None):
    """Write the zip of `tenant` (a Tenant); return (path, manifest)."""
    ref = TenantRef.of(tenant)
    folder = os.path.join(export_dir(), str(tenant.id))
    os.makedirs(folder, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    path = os.path.join(folder, f"{tenant.slug}-{stamp}.zip")
    manifest = {"format": FORMAT, "exported_at": datetime.now(timezone.utc).isoformat(),
                "tenant": {"id": str(tenant.id), "slug": tenant.slug, "name": tenant.name,
                           "plan": tenant.plan_code, "tier": tenant.tier}, "tables": {}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive, tenant_session(ref) as session:
        for n, table in enumerate(EXPORTED_TABLES):
            digest, rows = hashlib.sha256(), 0
            order = [c for c in table.primary_key.columns]
            with archive.open(f"tables/{table.name}.jsonl", "w") as out:
                result = session.execute(select(table).order_by(*order).execution_options(yield_per=BATCH))
                for row in result.mappings():
                    data = {k: _to_json(v) for k, v in row.items()}
                    out.write((json.dumps(data, sort_keys=True) + "\n").encode())
                    digest.update((_canonical(data) + "\n").encode())
                    rows += 1
                    if progress is not None and rows % 20_000 == 0:
                        progress.fraction("export", (n + 0.5) / len(EXPORTED_TABLES))
            manifest["tables"][table.name] = {"rows": rows, "sha256": digest.hexdigest()}
        archive.writestr("settings.json", json.dumps({"settings": tenant.settings, "plan": tenant.plan_code},
                                                     sort_keys=True, indent=2))
        archive.writestr("manifest.json", json.dumps(manifest, sort_keys=True, indent=2))
    return path, manifest


def verify_export(path):
    """The manifest of a sound export at `path`; Refused with the reason otherwise."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise Refused("That file is not a zip archive.", "archive") from None
    with archive:
        names = set(archive.namelist())
        if "manifest.json" not in names:
            raise Refused("The archive has no manifest.json: it is not a tenant export.", "archive")
        try:
            manifest = json.loads(archive.read("manifest.json"))
            exported_id = manifest["tenant"]["id"]
            tables = manifest["tables"]
        except (ValueError, KeyError, TypeError):
            raise Refused("The manifest cannot be read.", "archive") from None
        if manifest.get("format") != FORMAT:
            raise Refused(f"Unknown export format {manifest.get('format')!r}.", "archive")
        for table in EXPORTED_TABLES:
            member = f"tables/{table.name}.jsonl"
            if table.name not in tables or member not in names:
                raise Refused(f"The table {table.name} is missing from the export.", "archive")
            digest, rows, columns = hashlib.sha256(), 0, {c.name for c in table.columns}
            with archive.open(member) as lines:
                for line in lines:
                    row = json.loads(line)
                    if row.get("tenant_id") != exported_id:
                        raise Refused(f"{table.name} holds a row of another tenant ({row.get('tenant_id')}).",
                                      "archive")
                    if set(row) - columns:
                        raise Refused(f"{table.name} has unknown columns: {', '.join(sorted(set(row) - columns))}.",
                                      "archive")
                    digest.update((_canonical(row) + "\n").encode())
                    rows += 1
            expected = tables[table.name]
            if rows != expected.get("rows") or digest.hexdigest() != expected.get("sha256"):
                raise Refused(f"The checksum of {table.name} does not match the manifest: the file was changed.",
                              "archive")
    return manifest


def load_rows(tenant, path, progress=None):
    """Insert the export's rows into `tenant` (rewriting tenant_id): one transaction."""
    ref = TenantRef.of(tenant)
    with zipfile.ZipFile(path) as archive, tenant_transaction(ref) as session:
        for table in EXPORTED_TABLES:
            batch = []
            with archive.open(f"tables/{table.name}.jsonl") as lines:
                for line in lines:
                    batch.append(_from_json(table, json.loads(line), tenant.id))
                    if len(batch) >= BATCH:
                        session.execute(insert(table), batch)
                        batch = []
            if batch:
                session.execute(insert(table), batch)


def delete_rows(tenant):
    """All of the tenant's rows (the pool's shared tables; RLS keeps it to the tenant)."""
    with tenant_transaction(TenantRef.of(tenant)) as session:
        for table in reversed(TENANT_TABLES):
            session.execute(delete(table))


def run_export(job, progress):
    tenant = db.session.get(Tenant, job.tenant_id)
    if tenant is None or tenant.status not in ("active", "suspended", "deprovisioning"):
        raise Refused(f"Only an active or suspended tenant can be exported; this one is "
                      f"{tenant.status if tenant else 'gone'}.")
    progress.step("export", "running")
    path, manifest = write_export(tenant, progress)
    progress.step("export", "done")
    progress.finish("succeeded", path=path, tables=manifest["tables"], bytes=os.path.getsize(path))


def export_file(job):
    """The path of a finished export job's zip, if it is still inside the export folder."""
    path = (job.result or {}).get("path")
    if not path or job.kind not in ("export", "deprovision") or job.state != "succeeded":
        return None
    real = os.path.realpath(path)
    if not real.startswith(export_dir() + os.sep) or not os.path.exists(real):
        return None
    return real


def request_export(tenant, actor=None):
    """Record an export job of `tenant` (committed; the caller enqueues it). Refused
    unless the tenant has its storage (active or suspended)."""
    if tenant.status not in WITH_STORAGE:
        raise Refused(f"Only an active or suspended tenant can be exported; this one is {tenant.status}.")
    job = jobs.create("export", tenant.id, ["export"], audit.actor_label(actor))
    audit.record("tenant.export_requested", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                 details={"job": str(job.id)})
    db.session.commit()
    return job


def save_upload(storage):
    """Keep an uploaded export under the export folder; return its path."""
    folder = os.path.join(export_dir(), "uploads")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{uuid.uuid4().hex}.zip")
    storage.save(path)
    return path


def discard_upload(path):
    """Remove an uploaded export (only files under the uploads folder: an import from a
    path given on the command line is the operator's own file)."""
    uploads = os.path.join(export_dir(), "uploads") + os.sep
    if path and os.path.realpath(path).startswith(uploads) and os.path.exists(path):
        os.remove(path)
