"""A tenant's own settings (tenant table `settings`): display colour, whether support staff
may look into the account, how long a sign-in lasts. Read once per request (a signed-in
page reads them in the user loader's statement: `as_column`); saved (with the tenant's
name, in the registry) by its admins."""
import functools
import re

from flask import g
from sqlalchemy import func, select

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
    return _with_defaults(session.execute(select(as_column())).scalar())


@functools.cache
def as_column():
    """The stored settings as one JSON object ({key: stored value}), a scalar subquery to
    read beside another statement's row: the user loader's, which saves a signed-in page a
    round trip. Its rows are the tenant's by the same row-level security (or schema, or
    database) as any other tenant table's. Made once (a statement holds no tenant: the
    tenant is the transaction's), so that a statement made with it is the same each time.
    Named `tenant_settings` in a row: `prime` reads it so."""
    return (select(func.json_object_agg(TenantSetting.key, TenantSetting.value))
            .where(TenantSetting.key.in_(DEFAULTS)).scalar_subquery().label("tenant_settings"))


def _with_defaults(stored):
    """`as_column`'s value (None when no setting is stored) as the settings, defaults for any not set."""
    values = dict(DEFAULTS)
    values.update({key: value.get("value") for key, value in (stored or {}).items()})
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


def prime(row):
    """The request's settings from `row`, which read `as_column` (the user loader's, beside
    the user), so that the page's layout needs no statement of its own."""
    if "tenant_settings" not in g:
        g.tenant_settings = _with_defaults(row.tenant_settings)


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
