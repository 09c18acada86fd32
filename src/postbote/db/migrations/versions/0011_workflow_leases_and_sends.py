"""workflow work survives a crash: leases on events, jobs and digests; one send per unit of work

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

from postbote.db.schema import UTCDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('workflow_events', 'workflow_jobs', 'workflow_digests'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('lease_until', UTCDateTime(timezone=True), nullable=True))
    op.create_index('ux_workflow_jobs_unit', 'workflow_jobs', ['event_id', 'workflow_id', 'action', 'recipient'],
                    unique=True)
    op.create_table('workflow_sends',
    sa.Column('unit', sa.String(length=120), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_workflow_sends_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'unit', name=op.f('pk_workflow_sends'))
    )


def downgrade() -> None:
    op.drop_table('workflow_sends')
    op.drop_index('ux_workflow_jobs_unit', table_name='workflow_jobs')
    for table in ('workflow_events', 'workflow_jobs', 'workflow_digests'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('lease_until')
