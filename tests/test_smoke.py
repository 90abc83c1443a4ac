from tests.factories import sign_in_staff, sign_in_tenant


def test_staff_signs_in_and_sees_tenants(client, factory):
    staff = factory.staff()
    tenant = factory.tenant()
    sign_in_staff(client, staff)
    page = client.get("/admin/tenants")
    assert page.status_code == 200
    assert tenant.slug in page.get_data(as_text=True)


def test_tenant_user_signs_in_at_path_prefix(client, factory):
    tenant = factory.tenant()
    admin = factory.admin(tenant)
    sign_in_tenant(client, tenant, admin)
    home = client.get(f"/t/{tenant.slug}/")
    assert home.status_code == 200
    assert "Plan: Basic" in home.get_data(as_text=True)
