"""an index for finding a zero-retention message's earlier attempt by its hash

A zero-retention message is delivered during the SMTP session; when an endpoint fails, the answer
is 451 and the sending server retries the same bytes later. The retry looks up the earlier attempt
(same hash of the bytes as received, envelope sender and inbox) to reuse its message and event ids
and to skip the endpoints that already answered 2xx (inbound.zero_retention). Only zero-retention
rows are indexed (a partial index, on both databases), so stored mail pays nothing for it.

Revision ID: 0008_zero_retention_retry_index
Revises: 0007_unbounded_envelope_text
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0008_zero_retention_retry_index"
down_revision = "0007_unbounded_envelope_text"
branch_labels = None
depends_on = None

_WHERE = sa.text("retention = 'zero_retention'")


def upgrade() -> None:
    op.create_index("ix_messages_zero_retention_sha256", "messages", ["sha256"],
                    postgresql_where=_WHERE, sqlite_where=_WHERE)


def downgrade() -> None:
    op.drop_index("ix_messages_zero_retention_sha256", table_name="messages")
