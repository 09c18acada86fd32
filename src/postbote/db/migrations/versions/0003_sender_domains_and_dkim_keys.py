"""sender domains and dkim keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa
import postbote.db.schema


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('domains',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=253), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', postbote.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('verified_at', postbote.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('checked_at', postbote.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.Column('records', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_domains_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_domains')),
    sa.UniqueConstraint('name', name=op.f('uq_domains_name'))
    )
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_domains_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('dkim_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=True),
    sa.Column('selector', sa.String(length=63), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('private_key', sa.Text(), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('created_at', postbote.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('activated_at', postbote.db.schema.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_dkim_keys_domain_id_domains'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dkim_keys'))
    )
    with op.batch_alter_table('dkim_keys', schema=None) as batch_op:
        batch_op.create_index('ix_dkim_keys_domain_id', ['domain_id'], unique=False)

    op.create_table('domain_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('at', postbote.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('old_state', sa.String(length=16), nullable=True),
    sa.Column('new_state', sa.String(length=16), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_domain_events_domain_id_domains'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_domain_events'))
    )
    with op.batch_alter_table('domain_events', schema=None) as batch_op:
        batch_op.create_index('ix_domain_events_domain_id', ['domain_id'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requested_from', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('sender_note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('dkim_domain', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('dkim_selector', sa.String(length=63), nullable=True))

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender_policy', sa.String(length=16), server_default='fallback', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('sender_policy')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('dkim_selector')
        batch_op.drop_column('dkim_domain')
        batch_op.drop_column('sender_note')
        batch_op.drop_column('requested_from')

    with op.batch_alter_table('domain_events', schema=None) as batch_op:
        batch_op.drop_index('ix_domain_events_domain_id')

    op.drop_table('domain_events')
    with op.batch_alter_table('dkim_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_dkim_keys_domain_id')

    op.drop_table('dkim_keys')
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_domains_tenant_id'))

    op.drop_table('domains')
