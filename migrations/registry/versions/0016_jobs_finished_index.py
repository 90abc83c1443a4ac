"""An index on jobs.finished_at: /metrics asks every scrape for the jobs finished in the
last hour (and failed in the last 24), which without it reads every job ever run.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_jobs_finished", "jobs", ["finished_at"], schema="registry")


def downgrade():
    op.drop_index("ix_jobs_finished", table_name="jobs", schema="registry")
