"""A tenant admin exports the tenant's own data, and only its own."""
import io
import json
import zipfile

from tests.factories import csrf_token, sign_in_tenant


def test_admin_exports_and_downloads_own_data(client, factory, run_jobs):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.admin(tenant))
    factory.order(tenant, customer="Own Export Customer")
    page = client.get(f"/t/{tenant.slug}/data")
    assert page.status_code == 200
    token = csrf_token(page.get_data(as_text=True))
    response = client.post(f"/t/{tenant.slug}/data/export", data={"csrf_token": token})
    assert response.status_code == 302
    assert run_jobs() == 1
    body = client.get(f"/t/{tenant.slug}/data").get_data(as_text=True)
    assert "Download the zip" in body
    link = next(part.split('"')[0] for part in body.split('href="') if "/download" in part.split('"')[0])
    download = client.get(link)
    assert download.status_code == 200 and download.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.data))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["tenant"]["id"] == str(tenant.id) and manifest["tables"]["orders"]["rows"] == 1
    assert b"Own Export Customer" in archive.read("tables/orders.csv")


def test_members_may_not_export(client, factory):
    tenant = factory.tenant()
    sign_in_tenant(client, tenant, factory.user(tenant, role="member"))
    assert client.get(f"/t/{tenant.slug}/data").status_code == 403


def test_another_tenants_export_is_404(client, factory, run_jobs):
    a, b = factory.tenant(), factory.tenant()
    b_admin = factory.admin(b)
    sign_in_tenant(client, b, b_admin)
    page = client.get(f"/t/{b.slug}/data")
    client.post(f"/t/{b.slug}/data/export", data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    run_jobs()
    from portal.selfservice.services import latest_export
    from portal.tenancy.context import tenant_context

    with tenant_context(b):
        b_job = latest_export()
    sign_in_tenant(client, a, factory.admin(a))
    for url in (f"/t/{a.slug}/data/exports/{b_job.id}/download", f"/t/{a.slug}/data/exports/{b_job.id}/progress",
                f"/t/{a.slug}/data/exports/not-a-uuid/download"):
        response = client.get(url)
        assert response.status_code == 404 and b.slug not in response.get_data(as_text=True)
