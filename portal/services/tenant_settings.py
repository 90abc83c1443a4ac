"""A tenant's own settings (tenant table `settings`), read once per request: display
colour, whether support staff may look into the account, how long a sign-in lasts."""
from flask import g
from sqlalchemy import select

from portal.tenancy.data import TenantSetting
from portal.tenancy.placement import tenant_session

DEFAULTS = {"display_colour": "#3b5bdb", "support_access": True, "session_minutes": 480}


def current():
    """The current tenant's settings (defaults for any not set), once per request."""
    if "tenant_settings" not in g:
        with tenant_session() as session:
            rows = session.execute(select(TenantSetting)).scalars().all()
        values = dict(DEFAULTS)
        values.update({row.key: row.value.get("value") for row in rows if row.key in DEFAULTS})
        g.tenant_settings = values
    return g.tenant_settings


def forget():
    g.pop("tenant_settings", None)
