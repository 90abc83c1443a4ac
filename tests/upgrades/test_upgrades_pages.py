"""Staff pages for tenant schema upgrades."""

from sqlalchemy import text, update

from portal.dbsetup import owner_engine
from portal.extensions import db
from portal.lifecycle.upgrade import LOCK_KEY
from portal.models import Tenant, UpgradeRun
from tests.factories import csrf_token, sign_in_staff


def _post(client, url, data):
    data = dict(data, csrf_token=csrf_token(client.get(url).get_data(as_text=True)))
    return client.post(url, data=data)


def test_upgrades_page_lists_tenants_behind(client, factory):
    behind = factory.tenant()
    current = factory.tenant()
    db.session.execute(update(Tenant).where(Tenant.id == behind.id).values(schema_version=None))
    db.session.commit()
    sign_in_staff(client, factory.staff("operator"))
    body = client.get("/admin/upgrades").get_data(as_text=True)
    table = body.split('id="behind"')[1].split("</table>")[0]
    assert behind.slug in table and current.slug not in table
    assert "Upgrade all behind" in body


def test_starting_while_a_run_holds_the_lock_is_refused_with_its_name(app, client, factory):
    behind = factory.tenant()
    db.session.execute(update(Tenant).where(Tenant.id == behind.id).values(schema_version=None))
    db.session.add(UpgradeRun(started_by="night-shift@example.com", status="running", target="head", total=3))
    db.session.commit()
    sign_in_staff(client, factory.staff("operator"))
    holder = owner_engine(app.config["DATABASE_URL"])
    with holder.connect() as held:
        held.execute(text("select pg_advisory_lock(:k)"), {"k": LOCK_KEY})
        response = _post(client, "/admin/upgrades", {})
        held.execute(text("select pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
    holder.dispose()
    assert response.status_code == 302
    page = client.get("/admin/upgrades").get_data(as_text=True)
    assert "already running" in page and "night-shift@example.com" in page


def test_starting_an_upgrade_queues_a_job_that_brings_tenants_current(app, client, factory, run_jobs):
    behind = factory.tenant()
    db.session.execute(update(Tenant).where(Tenant.id == behind.id).values(schema_version=None))
    db.session.commit()
    operator = factory.staff("operator")
    sign_in_staff(client, operator)
    response = _post(client, "/admin/upgrades", {})
    assert response.status_code == 302
    assert "Upgrade started (a job)" in client.get("/admin/upgrades").get_data(as_text=True)
    assert run_jobs() == 1
    from portal.dbsetup import tenant_head
    from portal.models import Job

    assert db.session.get(Tenant, behind.id).schema_version == tenant_head()
    job = db.session.query(Job).filter_by(kind="upgrade", created_by=operator.email).one()
    assert job.state == "succeeded" and job.result["failed"] == 0 and job.percent == 100
    table = client.get("/admin/upgrades").get_data(as_text=True).split('id="behind"')[1].split("</table>")[0]
    assert behind.slug not in table
