"""envelope and address columns without a length limit (PostgreSQL)

MAIL FROM, HELO, the recipient's inbox and the From address come from the sending side. RFC 5321
§4.5.3.1 asks that servers impose no limits on such objects where they can, and the MX accepts
longer ones than the old ``varchar`` columns held (a HELO over 255 characters, a From address over
320): on PostgreSQL the insert then failed and the message was answered ``451`` on every retry, so
it could never be delivered. ``text`` has the same storage and speed there; the change rewrites no
rows and keeps the indexes (``varchar`` → ``text`` is binary-coercible).

SQLite never enforced the lengths (a ``VARCHAR(n)`` column has TEXT affinity), so nothing changes
there; its ``messages`` table also keeps the expression index that a batch rebuild would drop.

Revision ID: 0007_unbounded_envelope_text
Revises: 0006_outbox_ids_never_reused
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_unbounded_envelope_text"
down_revision = "0006_outbox_ids_never_reused"
branch_labels = None
depends_on = None

# column → its former length
COLUMNS = {"mail_from": 320, "helo": 255, "inbox": 320, "from_address": 320}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for name, length in COLUMNS.items():
        op.alter_column("messages", name, type_=sa.Text(), existing_type=sa.String(length))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for name, length in COLUMNS.items():
        # Values longer than the old limit are cut (USING left(...)), rather than failing the downgrade.
        op.alter_column("messages", name, type_=sa.String(length), existing_type=sa.Text(),
                        postgresql_using=f"left({name}, {length})")
