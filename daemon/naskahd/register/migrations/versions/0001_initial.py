"""initial register

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 08:26:56.878421
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agenda_counters',
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('category', 'year', name=op.f('pk_agenda_counters'))
    )
    op.create_table('documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agenda', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('original_name', sa.Text(), nullable=True),
    sa.Column('original_name_raw', sa.LargeBinary(), nullable=True),
    sa.Column('original_name_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('source_relpath', sa.LargeBinary(), nullable=False),
    sa.Column('archive_path', sa.Text(), nullable=False),
    sa.Column('temp_name', sa.Text(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('ciphertext_sha256', sa.String(length=64), nullable=True),
    sa.Column('ciphertext_size', sa.Integer(), nullable=True),
    sa.Column('recipients', sa.Text(), nullable=True),
    sa.Column('detected_type', sa.String(length=16), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.Enum('staged', 'filed', 'source_stuck', name='documentstate', native_enum=False, length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_documents')),
    sa.UniqueConstraint('agenda', name=op.f('uq_documents_agenda')),
    sa.UniqueConstraint('archive_path', name=op.f('uq_documents_archive_path')),
    sa.UniqueConstraint('category', 'year', 'number', name=op.f('uq_documents_category_year_number')),
    sa.UniqueConstraint('sha256', name=op.f('uq_documents_sha256'))
    )
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_documents_received_at'), ['received_at'], unique=False)

    op.create_table('review_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name_sha256', sa.String(length=64), nullable=False),
    sa.Column('source_relpath', sa.LargeBinary(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('moved_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_items'))
    )
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_items_name_sha256'), ['name_sha256'], unique=False)

    op.create_table('duplicates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('source_relpath', sa.LargeBinary(), nullable=False),
    sa.Column('moved_to', sa.Text(), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_duplicates_document_id_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicates'))
    )
    with op.batch_alter_table('duplicates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duplicates_document_id'), ['document_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('duplicates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_duplicates_document_id'))

    op.drop_table('duplicates')
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_items_name_sha256'))

    op.drop_table('review_items')
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_documents_received_at'))

    op.drop_table('documents')
    op.drop_table('agenda_counters')
