"""Custom domains are claims: one name may be pending at several tenants, verified at one.

The unique constraint on tenant_domains.domain let the first tenant to add a name hold it
for ever, verified or not. Now a name is unique among verified domains only (a partial
unique index: the first claim whose TXT record verifies wins, a second verification of
the name fails on it), and a tenant claims a name once. The plain index on tenant_id is
replaced by the unique (tenant_id, domain) one, which starts with it; a plain index on
domain finds every claim of a name, pending ones included.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

S = "registry"


def upgrade():
    op.drop_constraint("uq_tenant_domains_domain", "tenant_domains", type_="unique", schema=S)
    op.create_index("uq_tenant_domains_verified_domain", "tenant_domains", ["domain"], unique=True,
                    postgresql_where="verified_at is not null", schema=S)
    op.create_index("uq_tenant_domains_tenant_id_domain", "tenant_domains", ["tenant_id", "domain"],
                    unique=True, schema=S)
    op.create_index("ix_tenant_domains_domain", "tenant_domains", ["domain"], schema=S)
    op.drop_index("ix_tenant_domains_tenant_id", "tenant_domains", schema=S)


def downgrade():
    # Fails (and changes nothing: transactional DDL) while a name is claimed by several
    # tenants: remove the extra claims first.
    op.create_index("ix_tenant_domains_tenant_id", "tenant_domains", ["tenant_id"], schema=S)
    op.drop_index("ix_tenant_domains_domain", "tenant_domains", schema=S)
    op.drop_index("uq_tenant_domains_tenant_id_domain", "tenant_domains", schema=S)
    op.drop_index("uq_tenant_domains_verified_domain", "tenant_domains", schema=S)
    op.create_unique_constraint("uq_tenant_domains_domain", "tenant_domains", ["domain"], schema=S)
