"""Requests a minute a team of the plan's size can browse under.

A person reading pages makes a request every few seconds (static files are not counted:
portal/quotas/limits.py); the basic plan's 60 a minute was spent by one person browsing.
Its ten users get 300; plans still at the earlier values are raised, changed ones kept.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

S = "registry"
RAISED = {"basic": (60, 300), "professional": (600, 1200)}


def upgrade():
    for code, (before, after) in RAISED.items():
        op.execute(sa.text(f"update {S}.plans set requests_per_minute = :after "
                           "where code = :code and requests_per_minute = :before")
                   .bindparams(code=code, before=before, after=after))


def downgrade():
    for code, (before, after) in RAISED.items():
        op.execute(sa.text(f"update {S}.plans set requests_per_minute = :before "
                           "where code = :code and requests_per_minute = :after")
                   .bindparams(code=code, before=before, after=after))
