"""A tenant's analytics, read in its own storage (any tier, under row-level security).

Counts and unique users come from the daily roll-ups (portal/analytics/events.py): the
users of a range are the set bits of the OR of its bitmaps, block by block, so a 90-day
range reads a few rows a day, however many events it holds, and the numbers are exact.
Totals and active users read the every-event roll-ups (ALL_EVENTS), the table per event
name the others.
Hours (ranges of two days or less), funnels and property breakdowns need the events
themselves and read them through the (tenant, name, time) and (tenant, time) indexes.
Days are UTC days.
"""
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import text

from portal.tenancy.data import ALL_EVENTS, ROLLUP_CHUNK_BITS
from portal.tenancy.placement import qualified_table, tenant_session

HOURLY_UP_TO_DAYS = 2
BREAKDOWN_VALUES = 20


def _bounds(start, end):
    """The range's first instant and the instant after its last day (UTC)."""
    return (datetime.combine(start, time(), timezone.utc),
            datetime.combine(end + timedelta(days=1), time(), timezone.utc))


def dashboard(tenant, start, end):
    """Everything the dashboard shows for days `start`..`end` (inclusive), JSON-able."""
    span = {"start": start, "end": end, "all": ALL_EVENTS}
    with tenant_session(tenant) as session:
        rollups = qualified_table(session, "event_rollups")
        by_name = session.execute(text(f"""
            SELECT name, sum(events) AS events, sum(users) AS users FROM (
              SELECT name, chunk, sum(events) AS events, bit_count(bit_or(users)) AS users
              FROM {rollups} WHERE day BETWEEN :start AND :end AND name <> :all GROUP BY name, chunk) per_block
            GROUP BY name ORDER BY events DESC, name"""), span).all()
        total_users = session.execute(text(f"""
            SELECT coalesce(sum(users), 0) FROM (
              SELECT bit_count(bit_or(users)) AS users FROM {rollups}
              WHERE day BETWEEN :start AND :end AND name = :all GROUP BY chunk) per_block"""), span).scalar()
        # Per day: its events, and its users over 1, 7 and 30 days, from the every-event
        # roll-ups on a dense grid of days × blocks (a day with no row ORs in nothing).
        daily = session.execute(text(f"""
            WITH blocks AS (
              SELECT day, chunk, events, users FROM {rollups}
              WHERE day BETWEEN CAST(:start AS date) - 29 AND :end AND name = :all
            ), grid AS (
              SELECT CAST(d.day AS date) AS day, c.chunk, coalesce(b.events, 0) AS events,
                     coalesce(b.users, z.zero) AS users
              FROM generate_series(CAST(:start AS date) - 29, CAST(:end AS date), interval '1 day') AS d(day)
              CROSS JOIN (SELECT DISTINCT chunk FROM blocks) c
              CROSS JOIN (SELECT CAST(repeat('0', {ROLLUP_CHUNK_BITS}) AS bit({ROLLUP_CHUNK_BITS})) AS zero) z
              LEFT JOIN blocks b ON b.day = CAST(d.day AS date) AND b.chunk = c.chunk
            ), windows AS (
              SELECT day, events, bit_count(users) AS dau,
                     bit_count(bit_or(users) OVER (PARTITION BY chunk ORDER BY day
                                                   ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)) AS wau,
                     bit_count(bit_or(users) OVER (PARTITION BY chunk ORDER BY day
                                                   ROWS BETWEEN 29 PRECEDING AND CURRENT ROW)) AS mau
              FROM grid
            )
            SELECT day, sum(events), sum(dau), sum(wau), sum(mau) FROM windows
            WHERE day >= :start GROUP BY day"""), span).all()
        hourly = _hourly(session, start, end) if (end - start).days + 1 <= HOURLY_UP_TO_DAYS else None
    per_day = {row[0]: row for row in daily}
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    return {
        "start": start.isoformat(), "end": end.isoformat(),
        "totals": {"events": sum(int(r.events) for r in by_name), "users": int(total_users)},
        "by_name": [{"name": r.name, "events": int(r.events), "users": int(r.users)} for r in by_name],
        "daily": [{"day": d.isoformat(), **{name: int(value) for name, value in zip(
                      ("events", "dau", "wau", "mau"), per_day.get(d, (d, 0, 0, 0, 0))[1:], strict=True)}}
                  for d in days],
        "hourly": hourly,
    }


def _hourly(session, start, end):
    """Events and unique users per hour, from the events themselves (a short range)."""
    events = qualified_table(session, "events")
    begin, after = _bounds(start, end)
    found = {hour: (n, users) for hour, n, users in session.execute(text(f"""
        SELECT date_trunc('hour', occurred_at AT TIME ZONE 'UTC'), count(*), count(DISTINCT user_key)
        FROM {events} WHERE occurred_at >= :begin AND occurred_at < :after GROUP BY 1"""),
        {"begin": begin, "after": after})}
    first, count = begin.replace(tzinfo=None), int((after - begin).total_seconds() // 3600)
    hours = [first + timedelta(hours=n) for n in range(count)]
    return [{"hour": h.strftime("%Y-%m-%d %H:00"), "events": int(found.get(h, (0, 0))[0]),
             "users": int(found.get(h, (0, 0))[1])} for h in hours]


def funnel(tenant, start, end, steps, window_days):
    """Users who did `steps` (2 to 4 names) in that order, each after the one before and
    all within `window_days` of the first: from each user's first step one in the range.
    Returns [{"name", "users"}] per step."""
    begin, after = _bounds(start, end)
    params = {"begin": begin, "after": after, "window": timedelta(days=window_days),
              **{f"n{i}": name for i, name in enumerate(steps)}}
    with tenant_session(tenant) as session:
        events = qualified_table(session, "events")
        parts = [f"""s0 AS (SELECT user_key, min(occurred_at) AS at, min(occurred_at) AS started FROM {events}
                     WHERE name = :n0 AND user_key IS NOT NULL AND occurred_at >= :begin AND occurred_at < :after
                     GROUP BY user_key)"""]
        for i in range(1, len(steps)):
            parts.append(f"""s{i} AS (SELECT p.user_key, min(e.occurred_at) AS at, p.started FROM s{i - 1} p
                             JOIN {events} e ON e.user_key = p.user_key AND e.name = :n{i}
                              AND e.occurred_at > p.at AND e.occurred_at <= p.started + :window
                             GROUP BY p.user_key, p.started)""")
        counts = " UNION ALL ".join(f"SELECT {i}, count(*) FROM s{i}" for i in range(len(steps)))
        found = dict(session.execute(text(f"WITH {', '.join(parts)} {counts}"), params).all())
    return [{"name": name, "users": int(found.get(i, 0))} for i, name in enumerate(steps)]


def breakdown(tenant, start, end, name, prop):
    """Events `name` in the range by the value of property `prop`: the 20 commonest values
    with their events and unique users (no value: "(none)")."""
    begin, after = _bounds(start, end)
    with tenant_session(tenant) as session:
        rows = session.execute(text(f"""
            SELECT coalesce(properties ->> :prop, '(none)') AS value, count(*) AS events,
                   count(DISTINCT user_key) AS users
            FROM {qualified_table(session, 'events')}
            WHERE name = :name AND occurred_at >= :begin AND occurred_at < :after
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {BREAKDOWN_VALUES}"""),
            {"prop": prop, "name": name, "begin": begin, "after": after}).all()
    return [{"value": r.value, "events": int(r.events), "users": int(r.users)} for r in rows]
