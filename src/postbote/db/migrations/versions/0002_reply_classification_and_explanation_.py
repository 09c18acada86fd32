"""reply classification and explanation feedback

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa
import postbote.db.schema


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('explanation_feedback',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('explanation', sa.String(length=64), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.Column('helpful', sa.Boolean(), nullable=False),
    sa.Column('message_id', sa.String(length=32), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('created_at', postbote.db.schema.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_explanation_feedback_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_explanation_feedback'))
    )
    with op.batch_alter_table('explanation_feedback', schema=None) as batch_op:
        batch_op.create_index('ix_explanation_feedback_explanation', ['explanation'], unique=False)

    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('provider', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('rule', sa.String(length=64), nullable=True))

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('provider', sa.String(length=32), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('provider')
        batch_op.drop_column('category')

    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_column('rule')
        batch_op.drop_column('provider')
        batch_op.drop_column('category')

    with op.batch_alter_table('explanation_feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_explanation_feedback_explanation')

    op.drop_table('explanation_feedback')
