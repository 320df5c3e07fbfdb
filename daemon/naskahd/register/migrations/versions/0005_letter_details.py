"""letter details (agenda book fields), the register's search index, duplicates marked as seen,
audit rows by agenda (issue 21)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:10:00
"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('letter_details',
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('nomor', sa.String(length=100), nullable=True),
    sa.Column('tanggal', sa.Date(), nullable=True),
    sa.Column('asal', sa.String(length=200), nullable=True),
    sa.Column('tujuan', sa.String(length=200), nullable=True),
    sa.Column('perihal', sa.String(length=500), nullable=True),
    sa.Column('sifat', sa.String(length=32), nullable=True),
    sa.Column('catatan', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_letter_details_document_id_documents')),
    sa.PrimaryKeyConstraint('document_id', name=op.f('pk_letter_details'))
    )
    op.create_index(op.f('ix_letter_details_nomor'), 'letter_details', ['nomor'], unique=False)
    op.create_index(op.f('ix_letter_details_tanggal'), 'letter_details', ['tanggal'], unique=False)
    op.create_index(op.f('ix_letter_details_sifat'), 'letter_details', ['sifat'], unique=False)
    op.create_index('ix_documents_category_received_at', 'documents', ['category', 'received_at'], unique=False)
    op.create_table('letter_words',
    sa.Column('word', sa.String(length=32), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=1), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_letter_words_document_id_documents')),
    sa.PrimaryKeyConstraint('word', 'document_id', 'field', name=op.f('pk_letter_words'))
    )
    op.create_table('letter_index',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_document_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_index'))
    )
    _index_documents()
    # After the bulk insert: one sort instead of an index kept up row by row.
    op.create_index('ix_letter_words_document_id_word', 'letter_words', ['document_id', 'word'], unique=False)
    # Plain ADD COLUMNs (nullable, no default): no table rewrite on SQLite or PostgreSQL.
    op.add_column('duplicates', sa.Column('seen_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('duplicates', sa.Column('seen_by', sa.Text(), nullable=True))
    op.add_column('audit_events', sa.Column('agenda', sa.String(length=32), nullable=True))
    _backfill_audit_agenda()
    op.create_index(op.f('ix_audit_events_agenda'), 'audit_events', ['agenda'], unique=False)


def _index_documents() -> None:
    """The search index of the documents already registered (their names: no details exist
    yet), in batches. The words are made by the same function the search uses."""
    from naskahd.letters.index import entries

    bind = op.get_bind()
    docs = sa.table('documents', sa.column('id', sa.Integer()), sa.column('category', sa.String()),
                    sa.column('number', sa.Integer()), sa.column('original_name', sa.Text()))
    words = sa.table('letter_words', sa.column('word', sa.String()), sa.column('document_id', sa.Integer()),
                     sa.column('field', sa.String()))
    last = 0
    while True:
        rows = bind.execute(sa.select(docs.c.id, docs.c.category, docs.c.number, docs.c.original_name)
                            .where(docs.c.id > last).order_by(docs.c.id).limit(5000)).all()
        if not rows:
            break
        values = [e for r in rows for e in entries(r.id, r.category, r.number, r.original_name, None, None)]
        if values:
            bind.execute(words.insert(), values)
        last = rows[-1].id
    op.bulk_insert(sa.table('letter_index', sa.column('id', sa.Integer()), sa.column('last_document_id', sa.Integer())),
                   [{'id': 1, 'last_document_id': last}])


def _backfill_audit_agenda() -> None:
    """The agenda number of every existing event, from its (hashed) details: portable SQL
    and JSON parsed here, in batches, rather than a backend's own JSON functions."""
    bind = op.get_bind()
    events = sa.table('audit_events', sa.column('seq', sa.Integer()), sa.column('details', sa.Text()),
                      sa.column('agenda', sa.String()))
    last = 0
    while True:
        rows = bind.execute(sa.select(events.c.seq, events.c.details).where(events.c.seq > last)
                            .order_by(events.c.seq).limit(5000)).all()
        if not rows:
            return
        updates = []
        for seq, details in rows:
            try:
                parsed = json.loads(details)
            except ValueError:
                continue
            value = (parsed.get('agenda') or parsed.get('duplicate_of')) if isinstance(parsed, dict) else None
            if isinstance(value, str):
                updates.append({'s': seq, 'a': value})
        if updates:
            bind.execute(events.update().where(events.c.seq == sa.bindparam('s')).values(agenda=sa.bindparam('a')), updates)
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index(op.f('ix_audit_events_agenda'), table_name='audit_events')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_column('agenda')
    with op.batch_alter_table('duplicates', schema=None) as batch_op:
        batch_op.drop_column('seen_by')
        batch_op.drop_column('seen_at')
    op.drop_table('letter_index')
    op.drop_index('ix_letter_words_document_id_word', table_name='letter_words')
    op.drop_table('letter_words')
    op.drop_index('ix_documents_category_received_at', table_name='documents')
    op.drop_index(op.f('ix_letter_details_sifat'), table_name='letter_details')
    op.drop_index(op.f('ix_letter_details_tanggal'), table_name='letter_details')
    op.drop_index(op.f('ix_letter_details_nomor'), table_name='letter_details')
    op.drop_table('letter_details')
