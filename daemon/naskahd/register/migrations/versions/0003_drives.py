"""registered backup drives and the documents copied onto each (issue 17)

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('drives',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('uuid', sa.String(length=64), nullable=False),
    sa.Column('label', sa.Text(), nullable=True),
    sa.Column('fstype', sa.String(length=16), nullable=True),
    sa.Column('model', sa.Text(), nullable=True),
    sa.Column('serial', sa.Text(), nullable=True),
    sa.Column('token_id', sa.String(length=64), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drives')),
    sa.UniqueConstraint('name', name=op.f('uq_drives_name')),
    sa.UniqueConstraint('uuid', name=op.f('uq_drives_uuid'))
    )
    op.create_table('copies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('drive_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('drive_path', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_copies_document_id_documents')),
    sa.ForeignKeyConstraint(['drive_id'], ['drives.id'], name=op.f('fk_copies_drive_id_drives'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_copies')),
    sa.UniqueConstraint('drive_id', 'document_id', name=op.f('uq_copies_drive_id_document_id')),
    sa.UniqueConstraint('drive_id', 'drive_path', name=op.f('uq_copies_drive_id_drive_path'))
    )
    with op.batch_alter_table('copies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_copies_document_id'), ['document_id'], unique=False)
    # Planning counts the final documents up to an id: an index range, not a table scan.
    op.create_index(op.f('ix_documents_state'), 'documents', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_documents_state'), table_name='documents')
    with op.batch_alter_table('copies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_copies_document_id'))
    op.drop_table('copies')
    op.drop_table('drives')
