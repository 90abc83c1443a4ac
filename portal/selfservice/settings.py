"""Saving a tenant's own settings: its name (registry) and its settings rows."""
import re

from portal.extensions import db
from portal.lifecycle.cache import forget_tenant
from portal.models import Tenant
from portal.services import audit, tenant_settings
from portal.services.errors import Refused
from portal.services.validation import check_name
from portal.tenancy.context import require_tenant
from portal.tenancy.data import TenantSetting
from portal.tenancy.placement import tenant_transaction

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def save(name, colour, support_access, session_minutes, actor):
    tenant = require_tenant()
    name = check_name(name)
    if not _COLOUR.match(colour or ""):
        raise Refused("A colour is # and six hexadecimal digits, like #3b5bdb.", "display_colour")
    if session_minutes is None or not 5 <= session_minutes <= 10080:
        raise Refused("A sign-in lasts from 5 minutes to 7 days (10080 minutes).", "session_minutes")
    wanted = {"display_colour": colour.lower(), "support_access": bool(support_access),
              "session_minutes": session_minutes}
    before = tenant_settings.current()
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
        audit.record("tenant.settings_changed", actor=actor, tenant_id=tenant.id, target=tenant.slug,
                     details=changes)
    db.session.commit()
    tenant_settings.forget()
    forget_tenant(registry_row)
    return changes
