"""Tenant migration t0005 gives a custom role keyed `new` (which shadowed the new-role page)
a key of the portal's own form, in every tenant of the schema, and its holders with it."""
import re
import uuid

from sqlalchemy import text

from portal.dbsetup import migrate_schema, owner_engine


def test_t0005_renames_roles_keyed_new_and_their_holders(app):
    schema = f"tmig_{uuid.uuid4().hex[:10]}"
    tenants = [uuid.uuid4(), uuid.uuid4()]
    engine = owner_engine(app.config["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            conn.execute(text(f'create schema "{schema}"'))
            assert migrate_schema(conn, schema, "t0004") == "t0004"
            for tenant in tenants:
                conn.execute(text(f'insert into "{schema}".roles (tenant_id, key, name, permissions) values '
                                  "(:t, 'new', 'New', '[]'), (:t, 'auditor', 'Auditor', '[]')"), {"t": tenant})
                conn.execute(text(f'insert into "{schema}".users (tenant_id, id, email, name, role, is_active) values '
                                  "(:t, :a, 'a@x.example', '', 'new', true), "
                                  "(:t, :b, 'b@x.example', '', 'auditor', true)"),
                             {"t": tenant, "a": uuid.uuid4(), "b": uuid.uuid4()})
            assert migrate_schema(conn, schema, "t0005") == "t0005"
            roles = conn.execute(text(f'select tenant_id, key, name from "{schema}".roles order by name')).all()
            users = dict(conn.execute(text(f'select tenant_id || email, role from "{schema}".users')).all())
        renamed = {tenant: key for tenant, key, name in roles if name == "New"}
        assert set(renamed) == set(tenants) and all(re.fullmatch(r"r-[0-9a-f]{8}", k) for k in renamed.values())
        assert {key for _, key, name in roles if name == "Auditor"} == {"auditor"}
        for tenant in tenants:
            assert users[f"{tenant}a@x.example"] == renamed[tenant]
            assert users[f"{tenant}b@x.example"] == "auditor"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'drop schema if exists "{schema}" cascade'))
        engine.dispose()
