"""The dashboard as a tenant and staff see it: its date range, read through the
tenant-aware cache, the reports of `advanced_reports`, CSV of any table."""
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from portal.analytics import queries
from portal.analytics.events import retention_days
from portal.extensions import db
from portal.models import WITH_STORAGE
from portal.services import audit_events, cache, csv_export, entitlements
from portal.services.errors import NotFound, Refused
from portal.tenancy.context import TenantRef
from portal.tenants.services import get_tenant

DEFAULT_DAYS = 30
CACHE_SECONDS = 600  # a bound on memory: new events make an entry stale at once anyway
FUNNEL_STEPS = (2, 4)
FUNNEL_WINDOW_DAYS = (1, 90)
CSV_TABLES = ("events", "daily", "hourly", "funnel", "breakdown")


@dataclass
class Report:
    """What the page was asked for, as read from the URL, with a message per bad field."""

    start: date
    end: date
    earliest: date
    steps: list = field(default_factory=list)
    window_days: int = 7
    breakdown_name: str = ""
    breakdown_property: str = ""
    errors: dict = field(default_factory=dict)

    def quick_ranges(self):
        """(days, first day) of the usual ranges ending on this report's last day."""
        return [(days, self.end - timedelta(days=days - 1)) for days in (1, 7, 30, 90)
                if self.end - timedelta(days=days - 1) >= self.earliest]

    def args(self, **extra):
        """The URL's arguments for this report (links keep the range and the reports)."""
        out = {"start": self.start.isoformat(), "end": self.end.isoformat()}
        if self.steps:
            out.update({"steps": ",".join(self.steps), "window": self.window_days})
        if self.breakdown_name:
            out.update({"event": self.breakdown_name, "property": self.breakdown_property})
        return {**out, **extra}


def today():
    return datetime.now(timezone.utc).date()


def read_report(tenant, args):
    """The report asked for by `args` (the URL's query): a bad field is reported beside
    it and the default used instead, so the page still shows."""
    last = today()
    earliest = last - timedelta(days=retention_days(tenant) - 1)
    report = Report(start=max(earliest, last - timedelta(days=DEFAULT_DAYS - 1)), end=last, earliest=earliest)
    start, end = _day(args.get("start"), "start", report), _day(args.get("end"), "end", report)
    if start and start < earliest:
        report.errors["start"] = (f"Events are kept {retention_days(tenant)} days on this plan: "
                                  f"the earliest day is {earliest.isoformat()}.")
        start = None
    if start and start > last:
        report.errors["start"] = f"The first day can be today, {last.isoformat()}, at the latest."
        start = None
    if end and end > last:
        report.errors["end"] = f"The last day with events is today, {last.isoformat()}."
        end = None
    if end and end < earliest:
        report.errors["end"] = (f"Events are kept {retention_days(tenant)} days on this plan: "
                                f"the earliest day is {earliest.isoformat()}.")
        end = None
    if start and end and start > end:
        report.errors["end"] = "The end comes on or after the start."
        start = end = None
    report.start, report.end = start or report.start, end or report.end
    if report.start > report.end:  # a good end before the default start
        report.start = max(earliest, report.end - timedelta(days=DEFAULT_DAYS - 1))
    if advanced(tenant):  # the funnel and the breakdown exist only there
        _read_funnel(args, report)
        _read_breakdown(args, report)
    return report


def _day(raw, name, report):
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        report.errors[name] = "A day as YYYY-MM-DD, such as 2026-11-30."
        return None


def _read_funnel(args, report):
    raw = (args.get("steps") or "").strip()
    if not raw:
        return
    steps = [s.strip() for s in raw.split(",") if s.strip()]
    low, high = FUNNEL_STEPS
    if not low <= len(steps) <= high or any(len(s) > 80 or not s.isprintable() for s in steps):
        report.errors["steps"] = f"A funnel has {low} to {high} event names, separated by commas."
        return
    window = (args.get("window") or "7").strip()
    low, high = FUNNEL_WINDOW_DAYS
    if not (window.isascii() and window.isdigit() and low <= int(window) <= high):
        report.errors["window"] = f"A window of {low} to {high} days."
        return
    report.steps, report.window_days = steps, int(window)


def _read_breakdown(args, report):
    name, prop = (args.get("event") or "").strip(), (args.get("property") or "").strip()
    if not name and not prop:
        return
    if not name or len(name) > 80 or not name.isprintable():
        report.errors["event"] = "Choose the event to break down (1 to 80 printable characters)."
    elif not prop or len(prop) > 64 or not prop.isprintable():
        report.errors["property"] = "Name the property to break it down by (1 to 64 characters)."
    else:
        report.breakdown_name, report.breakdown_property = name, prop


def advanced(tenant):
    return entitlements.for_tenant(tenant.id, tenant.plan_code).has("advanced_reports")


def results(tenant, report):
    """The report's numbers, from the cache when the tenant's data has not changed since.
    Returns (results, served_from_cache)."""
    key = f"dashboard:{report.start}:{report.end}"
    data, hit = cache.cached(tenant.id, key, CACHE_SECONDS, lambda: queries.dashboard(tenant, report.start, report.end))
    if advanced(tenant):
        if report.steps:
            data["funnel"], funnel_hit = cache.cached(
                tenant.id, "funnel:" + _digest([report.start, report.end, report.window_days, report.steps]),
                CACHE_SECONDS,
                lambda: queries.funnel(tenant, report.start, report.end, report.steps, report.window_days))
            hit = hit and funnel_hit
        if report.breakdown_name:
            data["breakdown"], breakdown_hit = cache.cached(
                tenant.id, "breakdown:" + _digest([report.start, report.end, report.breakdown_name,
                                                   report.breakdown_property]),
                CACHE_SECONDS,
                lambda: queries.breakdown(tenant, report.start, report.end, report.breakdown_name,
                                          report.breakdown_property))
            hit = hit and breakdown_hit
    return data, hit


def _digest(parts):
    """A short, unambiguous cache-key part for user-given values (names may hold ':')."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]


def cached_html(tenant, page, report, advanced_reports, render):
    """The dashboard's HTML for `page` (an endpoint) and `report` (its normalised
    arguments: a new argument in the URL is not a new entry), and what the plan shows
    (advanced reports, the earliest day: an override changes them without new events),
    from the tenant's cache, or `render()` kept there. Returns (html, served_from_cache)."""
    key = _digest([page, report.args(), report.earliest, advanced_reports])
    return cache.cached(tenant.id, f"page:{key}", CACHE_SECONDS, render)


def csv_of(tenant, report, table):
    """One table of the page as CSV text (advanced_reports only: the caller checks)."""
    if table not in CSV_TABLES:
        raise Refused(f"table: one of {', '.join(CSV_TABLES)}.", "table")
    data, _ = results(tenant, report)
    rows = {"events": data["by_name"], "daily": data["daily"], "hourly": data.get("hourly") or [],
            "funnel": data.get("funnel") or [], "breakdown": data.get("breakdown") or []}[table]
    columns = {"events": ["name", "events", "users"], "daily": ["day", "events", "dau", "wau", "mau"],
               "hourly": ["hour", "events", "users"], "funnel": ["name", "users"],
               "breakdown": ["value", "events", "users"]}[table]
    return csv_export.table_text(columns, rows)


# -- staff ------------------------------------------------------------------------------------
def staff_read(tenant_id, what, args):
    """The tenant whose `what` ("dashboard" or "csv") a staff member reads, the read
    audited with the page's arguments and committed before the page answers. NotFound
    when it has no data to show (or, for CSV, no advanced reports: the tenant's own
    dashboard offers none either)."""
    tenant = get_tenant(tenant_id)
    if tenant.status not in WITH_STORAGE:
        raise NotFound(tenant_id, message=f"{tenant.slug} is {tenant.status}: it has no data to show.")
    if what == "csv" and not advanced(TenantRef.of(tenant)):
        raise NotFound(tenant_id, message="CSV downloads come with advanced reports, which this tenant's plan "
                                          "does not have.")
    audit_events.record("tenant.analytics_viewed", tenant_id=tenant.id, target=tenant.slug,
                        details={"what": what, **{k: v for k, v in args.items() if k != "csrf_token"}})
    db.session.commit()
    return tenant


def clear_cache(tenant):
    """Empty `tenant`'s cache (a Tenant), audited; the entries removed. RedisError when
    Redis cannot be reached (nothing recorded)."""
    removed = cache.clear(tenant.id)
    audit_events.record("tenant.cache_cleared", tenant_id=tenant.id, target=tenant.slug, details={"keys": removed})
    db.session.commit()
    return removed
