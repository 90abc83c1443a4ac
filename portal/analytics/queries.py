"""A tenant's analytics, read in its own storage (any tier, under row-level security).

Counts and unique users come from the daily roll-ups (portal/analytics/events.py): the
users of a range are the set bits of the OR of its bitmaps, block by block, so a range
reads a few rows a day, however many events it holds, and the numbers are exact. Totals
read the every-event roll-ups (ALL_EVENTS), the table per event name the others.
What a range costs then grows with the tenant's users (a bitmap has a bit for each), so
dashboards keep what they work out until an event changes it: runs of 2 to 64 days
ORed together (event_spans: a 90-day range ORs about 5 runs' bitmaps and a few days',
not 90 days'), and each day's active users over 1, 7 and 30 days (event_active_days: ORing 30
days of bitmaps a day). A batch deletes what its events change (events.store).
Hours (ranges of two days or less), funnels and property breakdowns need the events
themselves and read them through the (tenant, name, time) and (tenant, time) indexes.
Days are UTC days.
"""
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from portal.lifecycle.fences import REFUSED as FENCE_REFUSED
from portal.tenancy.data import ALL_EVENTS, MAU_DAYS, MAX_SPAN_DAYS, ROLLUP_CHUNK_BITS
from portal.tenancy.placement import qualified_table, tenant_session, tenant_transaction

HOURLY_UP_TO_DAYS = 2
BREAKDOWN_VALUES = 20


def _bounds(start, end):
    """The range's first instant and the instant after its last day (UTC)."""
    return (datetime.combine(start, time(), timezone.utc),
            datetime.combine(end + timedelta(days=1), time(), timezone.utc))


def lock_analytics(session, tenant_id):
    """Hold the tenant's analytics lock until the transaction ends. A tenant's batches
    take it (they number new users one at a time, and change what dashboards keep), and
    so do dashboards working out what they keep and the expiry: nothing is kept from a
    moment a batch had changed."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"analytics:{tenant_id}"})


def forget_kept(session, first, last):
    """Delete what dashboards kept that events on days `first`..`last` change: the runs of
    days holding one of those days, and the active users of the days whose 30 days hold
    one. (The caller holds the analytics lock.)"""
    session.execute(text(f"DELETE FROM {qualified_table(session, 'event_spans')} WHERE first_day <= :last "
                         f"AND first_day > CAST(:first AS date) - {MAX_SPAN_DAYS} AND first_day + days > :first"),
                    {"first": first, "last": last})
    session.execute(text(f"DELETE FROM {qualified_table(session, 'event_active_days')} "
                         "WHERE day BETWEEN :first AND :last"),
                    {"first": first, "last": last + timedelta(days=MAU_DAYS - 1)})


def dashboard(tenant, start, end):
    """Everything the dashboard shows for days `start`..`end` (inclusive), JSON-able.

    What is kept (runs of days, days' active users) is read first; what is missing is
    worked out and kept under the tenant's analytics lock, so no batch changes it in
    between (a batch deletes what it changes, under the same lock). Where the tenant's
    storage refuses writes (a move's freeze), it is worked out and not kept."""
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    spans, single_days = _cover(start, end)
    with tenant_session(tenant) as session:
        hourly = _hourly(session, start, end) if len(days) <= HOURLY_UP_TO_DAYS else None
        per_day = _kept_days(session, days)
        # (With days to work out, the names are read under the lock, once.)
        by_name = _by_name(session, spans, single_days) if len(per_day) == len(days) else None
    if by_name is None:
        with tenant_transaction(tenant) as session:
            lock_analytics(session, tenant.id)
            # Read again under the lock: another view may have kept some meanwhile, a batch
            # forgotten some, and the page then shows one moment.
            per_day = _kept_days(session, days)
            worked = _work_out(session, [d for d in days if d not in per_day])
            per_day.update(worked)
            kept_spans = _kept_spans(session, start, end)
            missing_spans = [span for span in spans if span not in kept_spans]
            try:
                with session.begin_nested():
                    _keep(session, tenant, worked, missing_spans)
            except DBAPIError as exc:
                if getattr(exc.orig, "pgcode", None) != FENCE_REFUSED:
                    raise
                spans, single_days = [], days  # nothing kept: every day on its own
            by_name = _by_name(session, spans, single_days)
    every = by_name.pop(ALL_EVENTS, (0, 0))
    return {
        "start": start.isoformat(), "end": end.isoformat(),
        "totals": {"events": every[0], "users": every[1]},
        "by_name": [{"name": name, "events": n, "users": users} for name, (n, users) in by_name.items()],
        "daily": [{"day": d.isoformat(), **dict(zip(("events", "dau", "wau", "mau"), per_day[d], strict=True))}
                  for d in days],
        "hourly": hourly,
    }


EPOCH = date(1970, 1, 1)
# Today and the two days before, where late events mostly land, are read day by day: a
# run of days holding one would be deleted by nearly every batch.
OPEN_DAYS = 3


def _cover(start, end):
    """([(first_day, days)], [day]): the aligned runs of 2 to 64 days and the single days
    that together cover start..end, fewest first (a run starts a multiple of its length
    after 1970-01-01). The open days are single days."""
    closed_end = min(end, datetime.now(timezone.utc).date() - timedelta(days=OPEN_DAYS))
    spans, singles, day = [], [], start
    while day <= closed_end:
        size = MAX_SPAN_DAYS
        while size > 1 and ((day - EPOCH).days % size or day + timedelta(days=size - 1) > closed_end):
            size //= 2
        if size > 1:
            spans.append((day, size))
        else:
            singles.append(day)
        day += timedelta(days=size)
    singles += [day + timedelta(days=n) for n in range((end - day).days + 1)]
    return spans, singles


def _kept_spans(session, start, end):
    """The runs of days starting in start..end that are kept (each has its every-event row
    of block 0)."""
    return set(session.execute(text(
        f"SELECT first_day, days FROM {qualified_table(session, 'event_spans')} "
        "WHERE first_day BETWEEN :start AND :end AND name = :all AND chunk = 0"),
        {"start": start, "end": end, "all": ALL_EVENTS}).all())


def _by_name(session, spans, single_days):
    """{name: (events, users)} over the runs of days and the single days, every name's
    (ALL_EVENTS) included, the most events first: the users are the set bits of the OR of
    their bitmaps, block by block. None when a run is not kept, which the same statement
    counts (one snapshot: a batch deleting a run in between cannot go unseen)."""
    firsts = [first for first, _ in spans]
    rows = session.execute(text(f"""
        WITH runs AS (
          SELECT name, chunk, events, users FROM {qualified_table(session, 'event_spans')}
          WHERE first_day BETWEEN :first AND :last
            AND (first_day, days) IN (SELECT * FROM unnest(CAST(:firsts AS date[]), CAST(:sizes AS int[])))
        ), per_name AS (
          SELECT name, sum(events) AS events, sum(users) AS users FROM (
            SELECT name, chunk, sum(events) AS events, bit_count(bit_or(users)) AS users FROM (
              SELECT * FROM runs
              UNION ALL
              SELECT name, chunk, events, users FROM {qualified_table(session, 'event_rollups')}
              WHERE day = ANY(CAST(:days AS date[]))
            ) parts GROUP BY name, chunk) per_block
          GROUP BY name
        )
        SELECT k.runs, p.name, p.events, p.users
        FROM (SELECT count(*) AS runs FROM runs WHERE name = :all AND chunk = 0) k
        LEFT JOIN per_name p ON true
        ORDER BY p.events DESC, p.name"""),
        {"firsts": firsts, "sizes": [size for _, size in spans], "days": single_days, "all": ALL_EVENTS,
         "first": min(firsts, default=EPOCH), "last": max(firsts, default=EPOCH)}).all()
    if rows[0].runs < len(spans):
        return None
    return {row.name: (int(row.events), int(row.users)) for row in rows if row.name is not None}


def _kept_days(session, days):
    """{day: (events, dau, wau, mau)} of the consecutive `days` whose active users are kept."""
    return {row[0]: tuple(row[1:]) for row in session.execute(text(
        f"SELECT day, events, dau, wau, mau FROM {qualified_table(session, 'event_active_days')} "
        "WHERE day BETWEEN :first AND :last"), {"first": days[0], "last": days[-1]})}


def _keep(session, tenant, worked_days, spans):
    """Keep the days' active users worked out ({day: (events, dau, wau, mau)}) and the runs
    of days (worked out here from the days' roll-ups, each with its every-event row of
    block 0 even when empty)."""
    if worked_days:
        session.execute(text(f"""
            INSERT INTO {qualified_table(session, 'event_active_days')} (tenant_id, day, events, dau, wau, mau)
            SELECT CAST(:tenant_id AS uuid), * FROM unnest(CAST(:days AS date[]), CAST(:events AS bigint[]),
              CAST(:dau AS int[]), CAST(:wau AS int[]), CAST(:mau AS int[]))
            ON CONFLICT (tenant_id, day) DO NOTHING"""),
            {"tenant_id": str(tenant.id), "days": list(worked_days),
             **{name: [values[n] for values in worked_days.values()]
                for n, name in enumerate(("events", "dau", "wau", "mau"))}})
    if spans:
        session.execute(text(f"""
            INSERT INTO {qualified_table(session, 'event_spans')}
              (tenant_id, key, first_day, days, name, chunk, events, users)
            SELECT CAST(:tenant_id AS uuid), first_day || '|' || days || '|' || chunk || '|' || name,
                   first_day, days, name, chunk, sum(events), bit_or(users)
            FROM unnest(CAST(:firsts AS date[]), CAST(:sizes AS int[])) AS w(first_day, days)
            CROSS JOIN LATERAL (
              SELECT r.name, r.chunk, r.events, r.users FROM {qualified_table(session, 'event_rollups')} r
              WHERE r.day BETWEEN w.first_day AND w.first_day + w.days - 1
              UNION ALL
              SELECT :all, 0, 0, CAST(repeat('0', {ROLLUP_CHUNK_BITS}) AS bit({ROLLUP_CHUNK_BITS}))
            ) x
            GROUP BY first_day, days, name, chunk
            ON CONFLICT (tenant_id, key) DO NOTHING"""),
            {"tenant_id": str(tenant.id), "firsts": [first for first, _ in spans],
             "sizes": [size for _, size in spans], "all": ALL_EVENTS})


# Up to this many days missing, each is worked out on its own (its 30 days of roll-ups, the
# usual case: today, after a batch); more, over one grid of days with sliding windows.
ONE_BY_ONE_UP_TO = 8


def _work_out(session, days):
    """{day: (events, dau, wau, mau)} for each of `days` (sorted), from the every-event
    roll-ups: the users are the set bits of the OR of the day's, its 7 days' and its 30
    days' bitmaps, block by block."""
    if not days:
        return {}
    rollups = qualified_table(session, "event_rollups")
    params = {"days": days, "all": ALL_EVENTS, "first": days[0], "last": days[-1]}
    if len(days) <= ONE_BY_ONE_UP_TO:
        rows = session.execute(text(f"""
            SELECT day, coalesce(sum(events), 0), coalesce(sum(dau), 0), coalesce(sum(wau), 0), sum(mau) FROM (
              SELECT m.day, r.chunk, sum(r.events) FILTER (WHERE r.day = m.day) AS events,
                     bit_count(bit_or(r.users) FILTER (WHERE r.day = m.day)) AS dau,
                     bit_count(bit_or(r.users) FILTER (WHERE r.day > m.day - 7)) AS wau,
                     bit_count(bit_or(r.users)) AS mau
              FROM unnest(CAST(:days AS date[])) AS m(day)
              JOIN {rollups} r ON r.name = :all AND r.day BETWEEN m.day - {MAU_DAYS - 1} AND m.day
              GROUP BY m.day, r.chunk) per_block
            GROUP BY day"""), params).all()
    else:
        # A dense grid of days × blocks (a day with no row ORs in nothing), so that the
        # windows' rows are days.
        rows = session.execute(text(f"""
            WITH blocks AS (
              SELECT day, chunk, events, users FROM {rollups}
              WHERE day BETWEEN CAST(:first AS date) - {MAU_DAYS - 1} AND :last AND name = :all
            ), grid AS (
              SELECT CAST(d.day AS date) AS day, c.chunk, coalesce(b.events, 0) AS events,
                     coalesce(b.users, z.zero) AS users
              FROM generate_series(CAST(:first AS date) - {MAU_DAYS - 1}, CAST(:last AS date),
                                   interval '1 day') AS d(day)
              CROSS JOIN (SELECT DISTINCT chunk FROM blocks) c
              CROSS JOIN (SELECT CAST(repeat('0', {ROLLUP_CHUNK_BITS}) AS bit({ROLLUP_CHUNK_BITS})) AS zero) z
              LEFT JOIN blocks b ON b.day = CAST(d.day AS date) AND b.chunk = c.chunk
            ), windows AS (
              SELECT day, events, bit_count(users) AS dau,
                     bit_count(bit_or(users) OVER (PARTITION BY chunk ORDER BY day
                                                   ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)) AS wau,
                     bit_count(bit_or(users) OVER (PARTITION BY chunk ORDER BY day
                                                   ROWS BETWEEN {MAU_DAYS - 1} PRECEDING AND CURRENT ROW)) AS mau
              FROM grid
            )
            SELECT day, sum(events), sum(dau), sum(wau), sum(mau) FROM windows
            WHERE day = ANY(CAST(:days AS date[])) GROUP BY day"""), params).all()
    worked = {row[0]: tuple(int(value) for value in row[1:]) for row in rows}
    return {d: worked.get(d, (0, 0, 0, 0)) for d in days}


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
