"""Alembic environment: runs on the connection handed over by portal.dbsetup.

The version table lives in the history's own schema, so the tenant history can be
applied per placement (the pool's `tenant_data` today, a schema per tenant later).
"""
from alembic import context
from sqlalchemy import text

config = context.config
connection = config.attributes["connection"]
schema = config.attributes["schema"]

connection.execute(text("CREATE SCHEMA IF NOT EXISTS %s" % connection.dialect.identifier_preparer.quote_schema(schema)))
context.configure(connection=connection, version_table_schema=schema, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
