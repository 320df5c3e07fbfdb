"""the installation a register belongs to

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 17:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('installation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('installation_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_installation')),
    sa.UniqueConstraint('installation_id', name=op.f('uq_installation_installation_id'))
    )


def downgrade() -> None:
    op.drop_table('installation')
