"""Placements: the PostgreSQL servers that hold silo tenants' databases.

A placement names the environment variable that holds its owner URL (credentials never
enter the registry), or none for the registry's own server.
"""
import os
import re

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from portal.dbsetup import owner_connection
from portal.extensions import db
from portal.models import Placement, Tenant
from portal.services import audit_events
from portal.services.errors import Refused
from portal.tenancy.names import database_name
from portal.tenancy.placement import placement_owner_url

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_ENV = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")


def all_placements():
    """Placements with the number of tenants on each, by name."""
    counts = (select(Tenant.placement_id, func.count().label("n")).group_by(Tenant.placement_id).subquery())
    rows = db.session.execute(
        select(Placement, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.placement_id == Placement.id).order_by(Placement.name)
    ).all()
    return rows


def by_name(name):
    return db.session.execute(select(Placement).where(Placement.name == name)).scalar_one_or_none()


def check_url(url_env):
    """The placement's owner URL, parsed and reachable; Refused with the reason if not."""
    if url_env and not _ENV.match(url_env):
        raise Refused("Name an environment variable: upper case letters, digits and _.", "url_env")
    if url_env and url_env not in os.environ:
        raise Refused(f"The environment variable {url_env} is not set on this server.", "url_env")
    raw = placement_owner_url(url_env)
    try:
        url = make_url(raw)
    except ArgumentError:
        raise Refused(f"The URL in {url_env} does not parse as a database URL.", "url_env") from None
    if url.get_backend_name() != "postgresql":
        raise Refused(f"The URL in {url_env} is not a PostgreSQL URL.", "url_env")
    try:
        with owner_connection(url, autocommit=True) as conn:
            conn.execute(text("select 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise Refused(f"The server is unreachable: {reason}", "url_env") from None
    return url


CAPACITY = (1, 100_000)  # silo tenants a server may hold


def register(name, url_env, capacity, actor=None):
    name = (name or "").strip().lower()
    url_env = (url_env or "").strip() or None
    if not _NAME.match(name):
        raise Refused("A name is 2 to 63 characters: a-z, 0-9 and hyphens, starting with a letter.", "name")
    if capacity is None or not CAPACITY[0] <= capacity <= CAPACITY[1]:
        raise Refused("Capacity is a number of tenants from 1 to 100,000.", "capacity")
    if db.session.execute(select(Placement.id).where(Placement.name == name)).first():
        raise Refused(f"A placement named {name} exists.", "name")
    check_url(url_env)
    placement = Placement(name=name, url_env=url_env, capacity=capacity)
    db.session.add(placement)
    audit_events.record("placement.registered", actor=actor, target=name,
                        details={"url_env": url_env, "capacity": capacity})
    db.session.commit()
    return placement


def choose_for_silo(placement_id):
    """The placement a new silo tenant goes to: the one asked for, or the emptiest with
    room. Refused when it is unknown, full or unreachable."""
    if placement_id:
        placement = db.session.get(Placement, placement_id)
        if placement is None:
            raise Refused("Choose one of the registered placements.", "placement")
        candidates = [placement]
    else:
        candidates = [p for p, _ in all_placements()]
        if not candidates:
            raise Refused("Register a placement first: silo tenants need a server.", "placement")
    counts = dict(db.session.execute(
        select(Tenant.placement_id, func.count()).where(Tenant.placement_id.in_([p.id for p in candidates]))
        .group_by(Tenant.placement_id)).all())
    with_room = sorted((counts.get(p.id, 0) / p.capacity, p.name, p) for p in candidates
                       if counts.get(p.id, 0) < p.capacity)
    if not with_room:
        if placement_id:
            full = candidates[0]
            raise Refused(f"Placement {full.name} is full ({full.capacity} tenants).", "placement")
        raise Refused("Every placement is full.", "placement")
    placement = with_room[0][2]
    try:
        check_url(placement.url_env)
    except Refused as exc:
        raise Refused(f"Placement {placement.name}: {exc.message}", "placement") from None
    return placement


def sizes(placements_):
    """{placement id: bytes its tenants' databases take} (None where the server does not
    answer): one connection to each server."""
    result = {}
    for placement in placements_:
        names = [database_name(t) for t in db.session.execute(
            select(Tenant.id).where(Tenant.placement_id == placement.id)).scalars()]
        try:
            with owner_connection(placement_owner_url(placement.url_env), autocommit=True) as conn:
                result[placement.id] = int(conn.execute(text(
                    "select coalesce(sum(pg_database_size(datname)), 0) from pg_database where datname = any(:n)"),
                    {"n": names}).scalar_one())
        except (SQLAlchemyError, KeyError):
            result[placement.id] = None
    return result
