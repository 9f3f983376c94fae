"""outbox ids are never reused (SQLite AUTOINCREMENT)

Without AUTOINCREMENT SQLite gives a new row max(rowid) + 1, so an id deleted by one outbox relay
could come back on a new row, and a second relay still holding the old id (the MX's and a
standalone worker's relays both run) would delete the new event's row: that event stayed
``pending`` forever. PostgreSQL takes ids from a sequence, which never goes back.

Revision ID: 0006_outbox_ids_never_reused
Revises: 0005_event_jobs
Create Date: 2026-11-22
"""
import warnings

from alembic import op

revision = "0006_outbox_ids_never_reused"
down_revision = "0005_event_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Rebuilt with the same columns and indexes; AUTOINCREMENT continues after the largest id.
    _rebuild_outbox(autoincrement=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild_outbox(autoincrement=False)


def _rebuild_outbox(*, autoincrement: bool) -> None:
    with warnings.catch_warnings():
        # Reflecting the foreign keys' tables meets the messages table's expression index, which
        # SQLAlchemy cannot reflect; that table is not rebuilt, so its index is untouched.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        with op.batch_alter_table("outbox", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
