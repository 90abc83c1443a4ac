"""Migration 0014: a staff member's set-password link moves out of `password_hash`
(`!link$<sha256>$<expiry>`, as the first staff invitations kept it) into the columns a
tenant user's has, and back on the way down. Run as the owner on a registry of its own (a
database made for the test, migrated to head, dropped after): on the test run's registry,
the downgrade's DDL would wait on every other session that uses its tables."""
import uuid
from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import text

from portal.dbsetup import alembic_config, owner_engine
from portal.services.secret_tokens import digest, new_secret

DIGEST = "ab" * 32
EXPIRES = "2030-05-06T07:08:09+00:00"


@pytest.fixture()
def owner(servers):
    database = f"{servers.name_prefix}links_{uuid.uuid4().hex[:8]}"  # dropped at the end of the run if not here
    admin = servers.admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    engine = owner_engine(servers.owner_url, database=database)
    try:
        with engine.connect() as connection:
            outer = connection.begin()
            command.upgrade(alembic_config("registry", connection), "head")
            yield connection
            outer.rollback()
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def _add(owner, password_hash, **link):
    member = uuid.uuid4()
    columns = {"id": member, "email": f"mig-{member.hex[:8]}@staff.example", "role": "viewer",
               "password_hash": password_hash, **link}
    owner.execute(text(f"INSERT INTO registry.staff_users ({', '.join(columns)}, name, is_active) "
                       f"VALUES ({', '.join(':' + c for c in columns)}, '', true)"), columns)
    return member


def _row(owner, member):
    return owner.execute(text(
        "SELECT * FROM registry.staff_users WHERE id = :id"), {"id": member}).mappings().one()


def _version(owner):
    return owner.execute(text("SELECT version_num FROM registry.alembic_version")).scalar_one()


def test_downgrade_writes_links_back_and_upgrade_moves_them_into_columns(owner):
    head = _version(owner)  # 0014 or a later revision: the round trip passes through 0014 both ways
    expires = datetime.fromisoformat(EXPIRES)
    pending = _add(owner, None, set_password_token_hash=DIGEST, set_password_expires_at=expires)
    used = _add(owner, "$argon2id$v=19$m=8192,t=1,p=4$c2FsdA$aGFzaA", set_password_token_hash="cd" * 32,
                set_password_expires_at=expires, set_password_used_at=expires)
    linkless = _add(owner, None)

    command.downgrade(alembic_config("registry", owner), "0013")
    assert _version(owner) == "0013"
    assert _row(owner, pending)["password_hash"] == f"!link${DIGEST}${EXPIRES}"
    assert _row(owner, used)["password_hash"].startswith("$argon2id$")  # a password: untouched
    nobodys = _row(owner, linkless)["password_hash"]
    assert nobodys.startswith("!link$") and nobodys.endswith("$1970-01-01T00:00:00+00:00")  # expired, nobody's
    assert "set_password_token_hash" not in _row(owner, pending)
    nullable = owner.execute(text(
        "SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'registry' "
        "AND table_name = 'staff_users' AND column_name = 'password_hash'")).scalar_one()
    assert nullable == "NO"

    command.upgrade(alembic_config("registry", owner), "head")
    assert _version(owner) == head
    moved = _row(owner, pending)
    assert moved["password_hash"] is None
    assert (moved["set_password_token_hash"], moved["set_password_expires_at"], moved["set_password_used_at"]) == (
        DIGEST, expires, None)
    assert _row(owner, used)["password_hash"].startswith("$argon2id$")
    back = _row(owner, linkless)
    assert back["password_hash"] is None and len(back["set_password_token_hash"]) == 64
    assert back["set_password_expires_at"] == datetime(1970, 1, 1, tzinfo=timezone.utc)
    unique = owner.execute(text(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'registry' "
        "AND indexname = 'uq_staff_users_set_password_token_hash'")).scalar_one()
    assert "UNIQUE" in unique


def test_the_upgrade_moves_a_pending_link_the_old_code_wrote(owner):
    """A `!link$` value as portal/staff/links.py wrote it before 0014, for a real token:
    after the upgrade the token's digest is in the column the app looks the token up by
    (portal/services/password_links.staff_for_token), its expiry beside it, no password."""
    command.downgrade(alembic_config("registry", owner), "0013")
    token = new_secret()
    member = uuid.uuid4()
    owner.execute(text(
        "INSERT INTO registry.staff_users (id, email, name, role, password_hash, is_active) "
        "VALUES (:id, :email, '', 'operator', :link, true)"),
        {"id": member, "email": f"old-{member.hex[:8]}@staff.example", "link": f"!link${digest(token)}${EXPIRES}"})
    command.upgrade(alembic_config("registry", owner), "head")
    row = _row(owner, member)
    assert (row["password_hash"], row["set_password_token_hash"]) == (None, digest(token))
    assert row["set_password_expires_at"] == datetime.fromisoformat(EXPIRES)
