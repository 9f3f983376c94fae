"""IMAP window: app-passwords, CONDSTORE mod-sequences, indexes for mailbox views

Revision ID: 0004_imap
Revises: 0003_imap_structure (0001 before issue 4 merged)
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0004_imap"
down_revision = "0003_imap_structure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_passwords",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(length=320), nullable=False),
        sa.Column("domain_id", sa.String(length=40), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["domain_id"], ["domains.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("app_passwords", schema=None) as batch_op:
        batch_op.create_index("ix_app_passwords_prefix", ["prefix"], unique=True)
        batch_op.create_index("ix_app_passwords_account_id", ["account_id"], unique=False)

    # RFC 7162 (CONDSTORE): a per-domain mod-sequence counter, bumped in the same transaction as the
    # change, and each message's current mod-sequence.
    with op.batch_alter_table("domains", schema=None) as batch_op:
        batch_op.add_column(sa.Column("imap_highest_modseq", sa.BigInteger(), nullable=False, server_default="1"))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("modseq", sa.BigInteger(), nullable=False, server_default="1"))
        batch_op.create_index("ix_messages_domain_modseq", ["domain_id", "modseq"], unique=False)
    # Address-scoped mailbox views match the inbox case-insensitively (RFC 5321 §2.4: local parts
    # are case-sensitive in theory; every real mailbox treats them as not).
    op.create_index("ix_messages_inbox_lower_uid", "messages", [sa.text("lower(inbox)"), "imap_uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_inbox_lower_uid")
        batch_op.drop_index("ix_messages_domain_modseq")
        batch_op.drop_column("modseq")
    with op.batch_alter_table("domains", schema=None) as batch_op:
        batch_op.drop_column("imap_highest_modseq")
    with op.batch_alter_table("app_passwords", schema=None) as batch_op:
        batch_op.drop_index("ix_app_passwords_account_id")
        batch_op.drop_index("ix_app_passwords_prefix")
    op.drop_table("app_passwords")
