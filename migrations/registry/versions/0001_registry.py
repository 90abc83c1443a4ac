"""The control plane: plans, tenants, domains, staff users, audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "registry"
PLANS = [
    # code, name, max users (None: unlimited), storage MB, API calls a day, features, position
    ("basic", "Basic", 10, 1024, 1000,
     {"api_access": True, "analytics": False, "custom_domains": False, "audit_export": False, "sso": False}, 1),
    ("professional", "Professional", 100, 10240, 10000,
     {"api_access": True, "analytics": True, "custom_domains": True, "audit_export": False, "sso": False}, 2),
    ("enterprise", "Enterprise", None, 102400, 100000,
     {"api_access": True, "analytics": True, "custom_domains": True, "audit_export": True, "sso": True}, 3),
]


def _created():
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade():
    plans = op.create_table(
        "plans",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("max_users", sa.Integer, nullable=True),
        sa.Column("storage_mb", sa.Integer, nullable=False),
        sa.Column("api_calls_per_day", sa.Integer, nullable=False),
        sa.Column("features", JSONB, nullable=False, server_default="{}"),
        sa.Column("default_tier", sa.String(16), nullable=False, server_default="pool"),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("is_retired", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=S,
    )
    op.bulk_insert(plans, [
        {"code": c, "name": n, "max_users": u, "storage_mb": mb, "api_calls_per_day": calls,
         "features": f, "default_tier": "pool", "position": pos, "is_retired": False}
        for c, n, u, mb, calls, f, pos in PLANS
    ])
    op.create_table(
        "tenants",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("plan_code", sa.String(32), sa.ForeignKey(f"{S}.plans.code", name="fk_tenants_plan_code_plans"),
                  nullable=False),
        sa.Column("settings", JSONB, nullable=False, server_default="{}"),
        _created(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status in ('active', 'suspended', 'deleted')", name="ck_tenants_status"),
        sa.CheckConstraint("tier in ('pool', 'bridge', 'silo')", name="ck_tenants_tier"),
        sa.CheckConstraint("slug ~ '^[a-z][a-z0-9-]{1,61}[a-z0-9]$'", name="ck_tenants_slug"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
        schema=S,
    )
    op.create_index("ix_tenants_status_created", "tenants", ["status", "created_at"], schema=S)
    op.create_index("ix_tenants_plan_code", "tenants", ["plan_code"], schema=S)
    op.create_index("ix_tenants_lower_name", "tenants", [sa.text("lower(name)")], schema=S)
    op.create_table(
        "tenant_domains",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True),
                  sa.ForeignKey(f"{S}.tenants.id", ondelete="CASCADE", name="fk_tenant_domains_tenant_id_tenants"),
                  nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        _created(),
        sa.UniqueConstraint("domain", name="uq_tenant_domains_domain"),
        schema=S,
    )
    op.create_index("ix_tenant_domains_tenant_id", "tenant_domains", ["tenant_id"], schema=S)
    op.create_table(
        "staff_users",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(120), nullable=False, server_default=""),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        _created(),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role in ('superadmin', 'operator', 'support', 'viewer')", name="ck_staff_users_role"),
        sa.UniqueConstraint("email", name="uq_staff_users_email"),
        schema=S,
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(80), nullable=True),
        sa.Column("actor_label", sa.String(254), nullable=False),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(254), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("ip", sa.String(64), nullable=True),
        schema=S,
    )
    op.create_index("ix_audit_events_tenant_at", "audit_events", ["tenant_id", "occurred_at"], schema=S)
    op.create_index("ix_audit_events_actor_at", "audit_events", ["actor_label", "occurred_at"], schema=S)
    op.create_index("ix_audit_events_action_at", "audit_events", ["action", "occurred_at"], schema=S)


def downgrade():
    for table in ("audit_events", "staff_users", "tenant_domains", "tenants", "plans"):
        op.drop_table(table, schema=S)
