"""thread links: msg-id → thread per account (JWZ-style threading at ingest)

Revision ID: 0002_threads
Revises: 0001
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = '0002_threads'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('thread_links',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('msgid_sha256', sa.String(length=64), nullable=False),
    sa.Column('thread_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'msgid_sha256')
    )
    with op.batch_alter_table('thread_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_thread_links_thread_id'), ['thread_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('thread_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_thread_links_thread_id'))
    op.drop_table('thread_links')
