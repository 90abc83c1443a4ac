"""Tenant migration t0004 finds the maker of every older API token by its `created_by`
label; a token whose maker is gone keeps none (and is refused, see test_api.py)."""
import uuid

from sqlalchemy import text

from portal.dbsetup import migrate_schema, owner_engine


def test_t0004_fills_in_the_makers_it_can_find(app):
    schema = f"tmig_{uuid.uuid4().hex[:10]}"
    tenant, maker = uuid.uuid4(), uuid.uuid4()
    engine = owner_engine(app.config["DATABASE_URL"])
    try:
        with engine.begin() as conn:
            conn.execute(text(f'create schema "{schema}"'))
            assert migrate_schema(conn, schema, "t0003") == "t0003"
            conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(tenant)})
            conn.execute(text(f'insert into "{schema}".users (tenant_id, id, email, name, role, is_active) '
                              "values (:t, :u, 'ann_x@acme.example', '', 'admin', true)"), {"t": tenant, "u": maker})
            for name, label in (("plain", "ann_x@acme.example"),
                                ("impersonated", "sup@staff.example as ann_x@acme.example"),
                                ("gone", "bob@acme.example"), ("look-alike", "annyx@acme.example")):
                conn.execute(text(f'insert into "{schema}".api_tokens (tenant_id, id, name, scopes, secret_hash, '
                                  "hint, created_by) values (:t, :i, :n, '[]', :h, 'abc', :c)"),
                             {"t": tenant, "i": uuid.uuid4(), "n": name, "h": uuid.uuid4().hex, "c": label})
            assert migrate_schema(conn, schema, "t0004") == "t0004"
            conn.execute(text("select set_config('app.tenant_id', :t, true)"), {"t": str(tenant)})
            makers = dict(conn.execute(text(f'select name, created_by_id from "{schema}".api_tokens')).all())
        # "_" in the email is no wildcard: the look-alike label finds nobody.
        assert makers == {"plain": maker, "impersonated": maker, "gone": None, "look-alike": None}
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'drop schema if exists "{schema}" cascade'))
        engine.dispose()
