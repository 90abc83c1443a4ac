"""What every page's template can use beyond Flask's own: the navigation of both faces,
and the filters that keep ids and dates short and on one line.

The navigation is built from the guards' own tables (`bp.staff_permissions`,
`bp.tenant_permissions`, portal/auth/guards.py): a link is shown only when the guard
would let this user through, so no link a role cannot use is ever offered.
"""
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app, request, url_for
from flask_login import current_user
from markupsafe import Markup, escape

from portal.auth.guards import PUBLIC, SIGNED_IN
from portal.auth.staff_roles import role_may
from portal.services import entitlements, jobqueue, tenant_settings

# (group, [(endpoint, label), ...]) in the order the sidebar shows them.
STAFF_NAV = (
    ("Tenants", (("tenants.index", "Tenants"), ("analytics_staff.overview", "Analytics"),
                 ("support_staff.index", "Impersonations"))),
    ("Plans and limits", (("plans_staff.matrix", "Plans"), ("plans_staff.requests", "Plan requests"),
                          ("quotas_staff.pressure", "Quotas"), ("quotas_staff.top", "Top consumers"))),
    ("Operations", (("placements.index", "Placements"), ("upgrades.index", "Upgrades"),
                    ("jobs.index", "Jobs"), ("outbox.index", "Outbox"), ("staff.people", "Staff"))),
    ("Audit", (("audit_staff.index", "Audit log"), ("staff.sessions", "Your sessions"))),
)
TENANT_NAV = (
    ("Workspace", (("selfservice.home", "Home"), ("orders.index", "Orders"),
                   ("analytics.dashboard", "Analytics"))),
    ("People", (("users.index", "Users"), ("roles.index", "Roles"))),
    ("Plan and usage", (("plans.plan_page", "Plan"), ("quotas.usage_page", "Usage"))),
    ("Settings", (("selfservice.settings_page", "Settings"), ("domains.index", "Custom domains"),
                  ("tokens.index", "API tokens"), ("selfservice.data", "Your data"),
                  ("audit.index", "Audit log"))),
)


@dataclass(frozen=True)
class NavLink:
    endpoint: str
    label: str
    url: str
    current: bool


def may_visit(endpoint):
    """Whether the guard of `endpoint`'s blueprint lets the signed-in user in (its
    permission and, on a tenant page, the plan's feature it needs)."""
    blueprint_name, _, name = endpoint.rpartition(".")
    blueprint = current_app.blueprints.get(blueprint_name)
    if blueprint is None or not current_user.is_authenticated:
        return False
    staff_table = getattr(blueprint, "staff_permissions", None)
    if staff_table is not None:
        permission = staff_table.get(name)
        return permission == PUBLIC or (permission is not None and getattr(current_user, "is_staff", False)
                                        and role_may(current_user.role, permission))
    need = getattr(blueprint, "tenant_permissions", {}).get(name)
    if need is None or getattr(current_user, "is_staff", True):
        return False
    need, feature = need if isinstance(need, tuple) else (need, None)
    if need not in (PUBLIC, SIGNED_IN) and not current_user.may(need):
        return False
    if feature is not None:
        return entitlements.current().has(feature)
    return True


def navigation(face):
    """The sidebar of `face` ("staff" or "tenant"): [(group, [NavLink])], only the links
    this user may follow, the current page's marked (its own link, else its section's)."""
    groups = [(group, [(endpoint, label) for endpoint, label in links if may_visit(endpoint)])
              for group, links in (STAFF_NAV if face == "staff" else TENANT_NAV)]
    groups = [(group, links) for group, links in groups if links]
    shown = [endpoint for _, links in groups for endpoint, _ in links]
    here = request.endpoint or ""
    if here not in shown:  # a page without its own link (a tenant's page) marks its section's
        here = next((e for e in shown if e.rpartition(".")[0] == request.blueprint), "")
    return [(group, [NavLink(e, label, url_for(e), e == here) for e, label in links]) for group, links in groups]


def short_id(value, length=8):
    """An id in monospace, cut to its first `length` characters; the whole id on hover
    (its title) and for screen readers (its label)."""
    if value is None:
        return ""
    text = str(value)
    if len(text) <= length:
        return Markup('<code class="id">{}</code>').format(text)
    return Markup('<code class="id" title="{0}" aria-label="{0}">{1}…</code>').format(text, text[:length])


def when(value, seconds=False):
    """A date or time on one line, UTC (a <time> with the full value for machines)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        shown = value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    elif isinstance(value, date):
        shown = value.isoformat()
    else:
        return escape(value)
    # A date's and a time's own text holds nothing to escape: joined directly (this runs
    # for every row of a table; Markup.format costs several times more).
    return Markup(f'<time class="when" datetime="{value.isoformat()}">{shown}</time>')


def money(cents):
    """An amount in cents as units with thousands separators: 123456 -> "1,234.56"."""
    return f"{cents / 100:,.2f}"


def install(app):
    """Every name the templates see beyond Flask's own, in one place."""
    from portal.lifecycle import cancelling, moves  # (they import the app's services; this module is imported early)

    app.jinja_env.globals.update(
        navigation=navigation, may_visit=may_visit,
        tenant_settings=tenant_settings.current,  # the tenant layout's colour
        role_may=role_may,  # the tenant page shows the impersonation link by role
        job_state=jobqueue.shown_state, job_cancellable=cancelling.cancellable,
        old_copy_droppable_from=moves.droppable_later)
    app.jinja_env.filters["short_id"] = short_id
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["money"] = money
