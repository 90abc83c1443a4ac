"""A tenant's data as a zip: one CSV file per table, and a manifest naming the tenant (its
plan and tier) with each table's rows, the SHA-256 of its file and its order-independent
checksum.

Tables are read and written with COPY (portal/lifecycle/copying.py), without `tenant_id`:
an export imported into another tenant (any tier) and exported again gives the same files
and checksums. Importing checks, before anything is made, that every table is there with
the columns it should have and that every file's SHA-256 matches the manifest; loading
checks each table's rows against its checksum before inserting them, all in one
transaction. An export of an older format is refused with the reason.
"""
import csv
import hashlib
import io
import json
import os
import uuid
import zipfile
from datetime import datetime, timezone
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import delete

from portal.extensions import db
from portal.lifecycle import copying
from portal.lifecycle.saga import Step, StepFailed, run_steps
from portal.models import WITH_STORAGE, Tenant
from portal.services import audit_events, jobqueue
from portal.services.errors import NotFound, Refused
from portal.tenancy.context import TenantRef
from portal.tenancy.data import KEPT_TABLES, TENANT_TABLES
from portal.tenancy.placement import tenant_session, tenant_transaction

FORMAT = 4
PROGRESS_ROWS = 20_000
# API tokens and sign-in sessions are credentials of the tenant as it is: not part of its
# data to take away (an imported tenant has another id, which they could not carry anyway).
# What dashboards keep is worked out from the roll-ups again on the first view.
EXPORTED_TABLES = [t for t in TENANT_TABLES if t.name not in ("api_tokens", "sessions") and t not in KEPT_TABLES]


def export_dir():
    path = current_app.config["PORTAL_EXPORT_DIR"]
    os.makedirs(path, exist_ok=True)
    return os.path.realpath(path)


def member(table):
    return f"tables/{table.name}.csv"


def export_path(tenant):
    """A new file's path for an export of `tenant` (its folder made)."""
    folder = os.path.join(export_dir(), str(tenant.id))
    os.makedirs(folder, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    return os.path.join(folder, f"{tenant.slug}-{stamp}.zip")


def write_export(tenant, progress=None, path=None, stop=None):
    """Write the zip of `tenant` (a Tenant), at `path` (default: a new one); return (path,
    manifest). Every table is read in one transaction: a consistent snapshot of the
    tenant. `stop()`, if given, is called between tables (it raises to end the export)."""
    ref = TenantRef.of(tenant)
    path = path or export_path(tenant)
    manifest = {"format": FORMAT, "exported_at": datetime.now(timezone.utc).isoformat(),
                "tenant": {"id": str(tenant.id), "slug": tenant.slug, "name": tenant.name,
                           "plan": tenant.plan_code, "tier": tenant.tier}, "tables": {}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive, \
            tenant_session(ref) as session:
        copying.snapshot(session)
        sums = copying.checksums(session, EXPORTED_TABLES)
        for n, table in enumerate(EXPORTED_TABLES):
            if stop is not None:
                stop()
            with archive.open(member(table), "w") as out:
                rows, sha256 = copying.copy_out(session, table, out)
            manifest["tables"][table.name] = {"rows": rows, "sha256": sha256, "checksum": sums[table.name][1]}
            if progress is not None and rows >= PROGRESS_ROWS:  # (a registry commit: not for every small table)
                progress.fraction("export", (n + 1) / len(EXPORTED_TABLES))
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
            manifest["tenant"]["id"], manifest["tenant"]["name"]
            tables = manifest["tables"]
        except (ValueError, KeyError, TypeError):
            raise Refused("The manifest cannot be read.", "archive") from None
        if manifest.get("format") != FORMAT:
            raise Refused(f"Unknown export format {manifest.get('format')!r}: this portal reads format {FORMAT} "
                          f"(an older export can be imported by the portal that made it, and exported again).",
                          "archive")
        for table in EXPORTED_TABLES:
            if table.name not in tables or member(table) not in names:
                raise Refused(f"The table {table.name} is missing from the export.", "archive")
            _check_file(archive, table, tables[table.name])
    return manifest


class _Digesting(io.RawIOBase):
    """A reader that hashes (SHA-256) what is read through it: the file is checked and
    its rows counted in one pass."""

    def __init__(self, raw):
        self.raw, self.digest = raw, hashlib.sha256()

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.raw.read(len(buffer))
        self.digest.update(data)
        buffer[:len(data)] = data
        return len(data)


def _check_file(archive, table, expected):
    """The file of `table`: its header names the table's columns, and its SHA-256 and row
    count are the manifest's."""
    with archive.open(member(table)) as raw:
        reading = _Digesting(raw)
        rows = csv.reader(io.TextIOWrapper(io.BufferedReader(reading, 1 << 16), encoding="utf-8", newline=""))
        try:
            found = next(rows, [])
            if found != copying.columns(table):
                unknown = sorted(set(found) - set(copying.columns(table)))
                what = f"unknown columns: {', '.join(unknown)}" if unknown else "columns missing or out of order"
                raise Refused(f"{table.name} has {what}.", "archive")
            count = sum(1 for _ in rows)
        except (UnicodeDecodeError, csv.Error):
            raise Refused(f"{table.name} is not a CSV file in UTF-8.", "archive") from None
    if not isinstance(expected, dict) or count != expected.get("rows") or \
            reading.digest.hexdigest() != expected.get("sha256"):
        raise Refused(f"The checksum of {table.name} does not match the manifest: the file was changed.", "archive")


def load_rows(tenant, path, checked_tables=None):
    """Insert the export's rows into `tenant` (with its own tenant id): one transaction,
    each table's rows checked against the manifest's checksum before they go in.

    `checked_tables` is the manifest's "tables" as verify_export found them when the
    import was asked for: the archive must still name the same rows and checksums. With
    the rows checked against those checksums in the database, that is the whole of the
    file checked again, without hashing and parsing it a second time in Python."""
    ref = TenantRef.of(tenant)
    with zipfile.ZipFile(path) as archive, tenant_transaction(ref) as session:
        try:
            tables = json.loads(archive.read("manifest.json"))["tables"]
        except (KeyError, ValueError, TypeError):
            raise Refused("The manifest cannot be read.", "archive") from None
        if checked_tables is not None and tables != checked_tables:
            raise Refused("The archive was changed since it was checked.", "archive")
        for table in EXPORTED_TABLES:
            expected = (tables[table.name]["rows"], tables[table.name]["checksum"])
            with archive.open(member(table)) as source:
                try:
                    copying.copy_in(session, table, source, tenant.id, expected)
                except copying.ChecksumMismatch as exc:
                    raise Refused(f"The rows of {exc} do not match the manifest: the file was changed.",
                                  "archive") from None


def delete_rows(tenant, ref=None):
    """All of the tenant's rows where it is (or where `ref` says): in the pool's shared
    tables, RLS keeps it to the tenant's."""
    with tenant_transaction(ref or TenantRef.of(tenant)) as session:
        for table in reversed(TENANT_TABLES):
            session.execute(delete(table))


class ExportCancelled(Exception):
    """A running export found staff cancelled it (lifecycle/cancelling.py)."""


def _stop_if_cancelled(job):
    """Between tables: ExportCancelled if staff asked the job to stop."""
    db.session.refresh(job, ["cancel_requested"])
    if job.cancel_requested:
        raise ExportCancelled("cancelled by staff: the partial export was removed")


def _remove_partial(context):
    if context.path and os.path.exists(context.path):
        os.remove(context.path)


def run_export(job, progress):
    """An export job: one step, whose undo removes a partial file (a failure, or a cancel
    found between tables)."""
    tenant = db.session.get(Tenant, job.tenant_id)
    if tenant is None or tenant.status not in ("active", "suspended", "deprovisioning"):
        raise Refused(f"Only an active or suspended tenant can be exported; this one is "
                      f"{tenant.status if tenant else 'gone'}.")
    context = SimpleNamespace(tenant=tenant, path=None, manifest=None)

    def export(ctx):
        _stop_if_cancelled(job)  # (asked while queued, as a worker took it)
        ctx.path = export_path(tenant)
        ctx.path, ctx.manifest = write_export(tenant, progress, ctx.path, stop=lambda: _stop_if_cancelled(job))

    try:
        run_steps([Step("export", export, _remove_partial)], context, progress)
    except StepFailed as failure:
        if isinstance(failure.__cause__, ExportCancelled):
            audit_events.record("job.cancelled", actor=("system", None, job.created_by), tenant_id=tenant.id,
                                target=tenant.slug, details={"job": str(job.id), "kind": job.kind, "was": "running"})
            progress.finish("cancelled", error=failure.reason)
            return
        raise
    path = context.path
    progress.finish("succeeded", path=path, tables=context.manifest["tables"], bytes=os.path.getsize(path))


def export_file(job):
    """The path of a finished export job's zip, if it is still inside the export folder
    (NotFound otherwise: nothing to download)."""
    path = (job.result or {}).get("path")
    if not path or job.kind not in ("export", "deprovision") or job.state != "succeeded":
        raise NotFound(job.id)
    real = os.path.realpath(path)
    if not real.startswith(export_dir() + os.sep) or not os.path.exists(real):
        raise NotFound(job.id)
    return real


def request_export(tenant, actor=None):
    """Record an export job of `tenant` (committed; the caller enqueues it). Refused
    unless the tenant has its storage (active or suspended)."""
    if tenant.status not in WITH_STORAGE:
        raise Refused(f"Only an active or suspended tenant can be exported; this one is {tenant.status}.")
    job = jobqueue.create("export", tenant.id, ["export"], audit_events.actor_label(actor))
    audit_events.record("tenant.export_requested", actor=actor, tenant_id=tenant.id, target=tenant.slug,
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
