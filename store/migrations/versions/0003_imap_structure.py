"""IMAP structures computed at ingest (ENVELOPE, BODYSTRUCTURE, BODY, header block, part offsets)

Revision ID: 0003_imap_structure
Revises: 0002_threads
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = '0003_imap_structure'
down_revision = '0002_threads'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('imap_structures',
    sa.Column('transaction_id', sa.String(length=40), nullable=False),
    sa.Column('envelope', sa.LargeBinary(), nullable=False),
    sa.Column('bodystructure', sa.LargeBinary(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('header_block', sa.LargeBinary(), nullable=False),
    sa.Column('parts', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('transaction_id')
    )


def downgrade() -> None:
    op.drop_table('imap_structures')
