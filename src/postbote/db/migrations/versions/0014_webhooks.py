"""webhooks: endpoints, calls and attempts; the logs get a dispatched mark (the outbox)

Rows already in the logs are marked dispatched: an endpoint hears of what happens after it exists.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

from postbote.db.schema import UTCDateTime

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# Each log and which of its undispatched rows the dispatcher looks for.
_LOGS = {'events': 'dispatched IS NULL', 'domain_events': 'dispatched IS NULL', 'suppressions': 'dispatched IS NULL',
         'workflow_events': 'dispatched IS NULL', 'workflow_jobs': "dispatched IS NULL AND state = 'failed'"}


def upgrade() -> None:
    for table, where in _LOGS.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('dispatched', UTCDateTime(timezone=True), nullable=True))
        op.execute(sa.text(f"UPDATE {table} SET dispatched = CURRENT_TIMESTAMP"))
        op.create_index(f'ix_{table}_undispatched', table, ['id'], postgresql_where=sa.text(where),
                        sqlite_where=sa.text(where))
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('previous_secret', sa.Text(), nullable=True),
    sa.Column('previous_until', UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_webhook_endpoints_tenant_id_tenants'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    op.create_index('ix_webhook_endpoints_tenant_id', 'webhook_endpoints', ['tenant_id'])
    op.create_table('webhook_calls',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('endpoint_id', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=40), nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=400), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=80), nullable=True),
    sa.Column('lease_until', UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'],
                            name=op.f('fk_webhook_calls_endpoint_id_webhook_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_calls')),
    sa.UniqueConstraint('endpoint_id', 'event_id', name=op.f('uq_webhook_calls_endpoint_id_event_id'))
    )
    op.create_index('ix_webhook_calls_due', 'webhook_calls', ['state', 'next_attempt_at'])
    op.create_index('ix_webhook_calls_order', 'webhook_calls', ['endpoint_id', 'subject', 'seq'])
    op.create_table('webhook_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('started_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('response_excerpt', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['webhook_calls.id'], name=op.f('fk_webhook_attempts_call_id_webhook_calls'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts'))
    )
    op.create_index('ix_webhook_attempts_call_id', 'webhook_attempts', ['call_id'])


def downgrade() -> None:
    op.drop_table('webhook_attempts')
    op.drop_table('webhook_calls')
    op.drop_table('webhook_endpoints')
    for table in reversed(list(_LOGS)):
        op.drop_index(f'ix_{table}_undispatched', table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column('dispatched')
