"""running many companies: admin keys, tenant suspension and settings (time zone, hourly limit)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

from postbote.db.schema import UTCDateTime

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tenants') as batch:
        batch.add_column(sa.Column('suspended_at', UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('suspended_reason', sa.Text(), nullable=True))
        batch.add_column(sa.Column('time_zone', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('hourly_limit', sa.Integer(), nullable=True))
    op.create_table('admin_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_admin_keys_key_hash'))
    )
    op.create_index('ix_messages_tenant_created', 'messages', ['tenant_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_messages_tenant_created', table_name='messages')
    op.drop_table('admin_keys')
    with op.batch_alter_table('tenants') as batch:
        for column in ('hourly_limit', 'time_zone', 'suspended_reason', 'suspended_at'):
            batch.drop_column(column)
