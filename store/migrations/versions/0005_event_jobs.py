"""events.job_id: the rq job that carries a queued event (deliveries are batched per job)

Revision ID: 0005_event_jobs
Revises: 0004_imap
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0005_event_jobs"
down_revision = "0004_imap"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("job_id")
