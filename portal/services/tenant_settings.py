"""A tenant's own settings (tenant table `settings`): display colour, whether support staff
may look into the account, how long a sign-in lasts. Read once per request; saved (with
the tenant's name, in the registry) by its admins."""
import re

from flask import g
from sqlalchemy import select

from portal.extensions import db
from portal.models import Tenant
from portal.services import audit_events
from portal.services.errors import Refused
from portal.services.validation import check_name
from portal.tenancy.context import require_tenant
from portal.tenancy.data import TenantSetting
from portal.tenancy.lookup import forget_tenant
from portal.tenancy.placement import tenant_session, tenant_transaction

SESSION_MINUTES = (5, 10080)  # a sign-in lasts 5 minutes to 7 days
DEFAULTS = {"display_colour": "#3b5bdb", "support_access": True, "session_minutes": 480}


def read(session):
    """The settings of the tenant `session` is bound to (defaults for any not set)."""
    values = dict(DEFAULTS)
    rows = session.execute(select(TenantSetting).where(TenantSetting.key.in_(DEFAULTS))).scalars()
    values.update({row.key: row.value.get("value") for row in rows})
    return values


def of(ref):
    """The settings of tenant `ref` (any tenant: a staff page's, say)."""
    with tenant_session(ref) as session:
        return read(session)


def current():
    """The current request's tenant's settings, once per request."""
    if "tenant_settings" not in g:
        with tenant_session() as session:
            g.tenant_settings = read(session)
    return g.tenant_settings


def prime(session):
    """Read the request's settings in a transaction already open on its tenant (the user
    loader's), so that the page's layout needs no transaction of its own."""
    if "tenant_settings" not in g:
        g.tenant_settings = read(session)


def forget():
    g.pop("tenant_settings", None)


_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def save(name, colour, support_access, session_minutes, actor):
    tenant = require_tenant()
    name = check_name(name)
    if not _COLOUR.match(colour or ""):
        raise Refused("A colour is # and six hexadecimal digits, like #3b5bdb.", "display_colour")
    low, high = SESSION_MINUTES
    if session_minutes is None or not low <= session_minutes <= high:
        raise Refused(f"A sign-in lasts from {low} minutes to 7 days ({high} minutes).", "session_minutes")
    wanted = {"display_colour": colour.lower(), "support_access": bool(support_access),
              "session_minutes": session_minutes}
    before = current()
    if getattr(actor, "impersonation", None) is not None and wanted["support_access"] != before["support_access"]:
        # Consent is the tenant's to give: an impersonation (a superadmin's override
        # included) must not leave support access turned on, or off, behind it.
        raise Refused("Support access is the tenant's own choice: it cannot be changed while impersonating.",
                      "support_access")
    with tenant_transaction() as session:
        for key, value in wanted.items():
            row = session.get(TenantSetting, (tenant.id, key))
            if row is None:
                session.add(TenantSetting(tenant_id=tenant.id, key=key, value={"value": value}))
            else:
                row.value = {"value": value}
    registry_row = db.session.get(Tenant, tenant.id)
    changes = {k: {"from": before.get(k), "to": v} for k, v in wanted.items() if before.get(k) != v}
    if registry_row.name != name:
        changes["name"] = {"from": registry_row.name, "to": name}
        registry_row.name = name
    if changes:
        audit_events.record("tenant.settings_changed", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                            details=changes)
    db.session.commit()
    forget()
    forget_tenant(registry_row)
    return changes
