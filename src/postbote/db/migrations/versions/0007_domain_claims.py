"""domain claims: several tenants may claim a pending domain, each claim with its own targets

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Domains claimed before this keep claim_token NULL: their targets, already published by
    # their IT teams, stay as they were.
    with op.batch_alter_table('domains') as batch:
        batch.add_column(sa.Column('claim_token', sa.String(length=32), nullable=True))
        batch.drop_constraint('uq_domains_name', type_='unique')
        batch.create_unique_constraint('uq_domains_tenant_id_name', ['tenant_id', 'name'])
        batch.create_index('ix_domains_name', ['name'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('domains') as batch:
        batch.drop_index('ix_domains_name')
        batch.drop_constraint('uq_domains_tenant_id_name', type_='unique')
        batch.create_unique_constraint('uq_domains_name', ['name'])
        batch.drop_column('claim_token')
