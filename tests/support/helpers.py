"""Starting and entering an impersonation through the pages, as support staff do."""
from urllib.parse import urlsplit

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Impersonation
from tests.factories import csrf_token, sign_in_staff

REASON = "Customer reports the orders page is empty"
TICKET = "SUP-4711"


def start(client, tenant, target, **fields):
    """POST the start form for `target` (a user of `tenant`) (a staff member is signed in). `fields`
    override the defaults; a value of None leaves the field out."""
    page = client.get(f"/admin/tenants/{tenant.id}/impersonate")
    assert page.status_code == 200, page.status_code
    data = {"user": str(target.id), "reason": REASON, "ticket": TICKET, "minutes": "15",
            "csrf_token": csrf_token(page.get_data(as_text=True))}
    data.update(fields)
    return client.post(f"/admin/tenants/{tenant.id}/impersonate",
                       data={k: v for k, v in data.items() if v is not None})


def handoff_path(response):
    """The tenant handoff a successful start redirects to: /t/<slug>/impersonate?token=…"""
    assert response.status_code == 302, response.get_data(as_text=True)
    location = urlsplit(response.headers["Location"])
    assert location.path.endswith("/impersonate") and "token=" in location.query
    return f"{location.path}?{location.query}"


def impersonate(client, factory, tenant, user, staff=None, **fields):
    """Sign in `staff` (default: a new support staff member), start and enter an
    impersonation of `user`; return (staff, impersonation row)."""
    staff = staff or factory.staff("support")
    sign_in_staff(client, staff)
    entered = client.get(handoff_path(start(client, tenant, user, **fields)))
    assert entered.status_code == 302 and entered.headers["Location"].endswith(f"/t/{tenant.slug}/")
    return staff, latest(staff)


def latest(staff):
    db.session.expire_all()
    return db.session.execute(select(Impersonation).where(Impersonation.staff_user_id == staff.id)
                              .order_by(Impersonation.started_at.desc())).scalars().first()


def events(action, impersonation=None, tenant=None):
    db.session.expire_all()
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    if impersonation is not None:
        query = query.where(AuditEvent.details["impersonation_id"].astext == str(impersonation.id))
    if tenant is not None:
        query = query.where(AuditEvent.tenant_id == tenant.id)
    return db.session.execute(query).scalars().all()


def page_token(client, path, **kwargs):
    return csrf_token(client.get(path, **kwargs).get_data(as_text=True))
