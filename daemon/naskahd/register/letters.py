"""A letter's details as an Indonesian agenda book keeps them (issue 21): one row per
document, made when someone first fills them in (``naskahd.letters.details``).

Kept apart from ``documents`` so that filing never touches it and a register made before
it needs no rewrite of its largest table. For an exempt letter only ``tanggal`` and
``sifat`` are ever stored (its agenda number and dates are in ``documents``); the other
fields are refused before they reach this table.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from naskahd.register.models import Base, UTCDateTime

# Longest values accepted (characters): an agenda book's columns, generously.
LIMITS = {"nomor": 100, "asal": 200, "tujuan": 200, "perihal": 500, "sifat": 32, "catatan": 2000}


class LetterDetails(Base):
    __tablename__ = "letter_details"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    nomor: Mapped[str | None] = mapped_column(String(LIMITS["nomor"]), index=True)  # nomor surat
    tanggal: Mapped[dt.date | None] = mapped_column(Date, index=True)  # tanggal surat
    asal: Mapped[str | None] = mapped_column(String(LIMITS["asal"]))  # sender (inbound)
    tujuan: Mapped[str | None] = mapped_column(String(LIMITS["tujuan"]))  # addressee (outbound)
    perihal: Mapped[str | None] = mapped_column(String(LIMITS["perihal"]))  # subject
    sifat: Mapped[str | None] = mapped_column(String(LIMITS["sifat"]), index=True)  # biasa / segera / ...
    catatan: Mapped[str | None] = mapped_column(Text)  # free note
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(Text)


class LetterWord(Base):
    """The register's search index (letters/index.py): each word of a document's agenda
    number, name, letter number and subject, lower-cased, with the document. A word is
    found by a range on the primary key (``word >= 'rap' AND word < 'rap\\uffff'``): the
    same on every backend, and no table scan. Never a word of an exempt letter but its
    agenda number's."""

    __tablename__ = "letter_words"
    # A document's words, for checking a candidate (letters/index.py ``contains``) and
    # re-indexing a document, from the index alone.
    __table_args__ = (Index("ix_letter_words_document_id_word", "document_id", "word"),)

    word: Mapped[str] = mapped_column(String(32), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    field: Mapped[str] = mapped_column(String(1), primary_key=True)  # a agenda, n name, o nomor, p perihal


class LetterIndex(Base):
    """One row: the highest document id whose words are in ``letter_words``. Documents
    above it are searched without the index (letters/search.py), so a search is right
    whoever inserted them."""

    __tablename__ = "letter_index"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_document_id: Mapped[int] = mapped_column()
