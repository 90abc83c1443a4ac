"""A tenant's own settings (tenant table `settings`): display colour, whether support staff
may look into the account, how long a sign-in lasts. Read once per request."""
from flask import g
from sqlalchemy import select

from portal.tenancy.data import TenantSetting
from portal.tenancy.placement import tenant_session

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
