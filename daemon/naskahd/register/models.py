"""The register's tables, as typed SQLAlchemy 2.x models.

Constraint names come from a naming convention so that Alembic's batch migrations can
drop them on SQLite. Times are stored in UTC; people see them in the office's timezone.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    DateTime, Enum, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Text, TypeDecorator, UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the register; use UTC")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DocumentState(enum.Enum):
    # Row committed with its agenda number; the archive copy may still carry its temp
    # name and the source may still be in the drop folder. Start-up reconciliation
    # finishes whatever a crash left here.
    STAGED = "staged"
    # Archive copy under its final name and source removed: nothing left to do.
    FILED = "filed"
    # Archive copy final, but the source could not be removed (permissions): never filed again.
    SOURCE_STUCK = "source_stuck"


class AgendaCounter(Base):
    """The last agenda number given per category per calendar year (office timezone)."""

    __tablename__ = "agenda_counters"
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("category", "year", "number"),
        # issue 21: the register's search, newest first within a category (letters/search.py)
        Index("ix_documents_category_received_at", "category", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agenda: Mapped[str] = mapped_column(String(32), unique=True)
    category: Mapped[str] = mapped_column(String(16))
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    # For exempt documents the name is withheld: only its age-encrypted form is kept.
    original_name: Mapped[str | None] = mapped_column(Text)  # for display (bad bytes escaped)
    original_name_raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # the exact bytes
    original_name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Drop-relative path, exact bytes; empty for exempt letters (see naming.recorded_relpath).
    source_relpath: Mapped[bytes] = mapped_column(LargeBinary)
    archive_path: Mapped[str] = mapped_column(Text, unique=True)  # relative to the archive root
    temp_name: Mapped[str | None] = mapped_column(Text)  # the staged file's name beside archive_path
    size: Mapped[int] = mapped_column(Integer)
    # SHA-256 of the plaintext; one document per content, so a duplicate is never registered.
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    ciphertext_sha256: Mapped[str | None] = mapped_column(String(64))
    ciphertext_size: Mapped[int | None] = mapped_column(Integer)
    recipients: Mapped[str | None] = mapped_column(Text)  # JSON list of age1... strings
    detected_type: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    state: Mapped[DocumentState] = mapped_column(
        Enum(DocumentState, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=DocumentState.STAGED,
        index=True,  # issue 17: "final documents up to id M" is an index range (drives/plan.py)
    )

    duplicates: Mapped[list[Duplicate]] = relationship(back_populates="document")


class Duplicate(Base):
    """A file whose content was already registered: moved aside, never registered again."""

    __tablename__ = "duplicates"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    source_relpath: Mapped[bytes] = mapped_column(LargeBinary)
    moved_to: Mapped[str] = mapped_column(Text)  # name inside the duplicates folder ('' if exempt)
    detected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Marked as seen by a person (issue 21, letters/triage.py): no longer needs anyone.
    # The file itself is left where it is.
    seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    seen_by: Mapped[str | None] = mapped_column(Text)

    document: Mapped[Document] = relationship(back_populates="duplicates")


class ReviewItem(Base):
    """A file moved to the review folder, and why: shown by `status` while it is there."""

    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the file's name inside the review folder: found again without storing
    # the name (an exempt letter's name must not reach the register).
    name_sha256: Mapped[str] = mapped_column(String(64), index=True)
    source_relpath: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    moved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Installation(Base):
    """The installation this register belongs to: the id in each root's marker
    (installation.py). A register and roots that disagree are refused at start."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(primary_key=True)
    installation_id: Mapped[str] = mapped_column(String(36), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Drive(Base):
    """A registered backup drive (SOP step 6). Its UUID and label only pre-filter: a drive is
    accepted when the identity token on it verifies (drives/token.py)."""

    __tablename__ = "drives"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    uuid: Mapped[str] = mapped_column(String(64), unique=True)  # the filesystem's UUID (ID_FS_UUID)
    label: Mapped[str | None] = mapped_column(Text)
    fstype: Mapped[str | None] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(Text)
    serial: Mapped[str | None] = mapped_column(Text)
    token_id: Mapped[str] = mapped_column(String(64))  # the random drive id written in the token
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_sync_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # last sync that finished
    last_verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # last time all on it verified


class Copy(Base):
    """One document on one drive: copied, read back past the page cache and verified."""

    __tablename__ = "copies"
    __table_args__ = (UniqueConstraint("drive_id", "document_id"), UniqueConstraint("drive_id", "drive_path"))

    id: Mapped[int] = mapped_column(primary_key=True)
    drive_id: Mapped[int] = mapped_column(ForeignKey("drives.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    drive_path: Mapped[str] = mapped_column(Text)  # relative to naskah/ on the drive, after name mapping
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))  # of the file on the drive (the .age file for exempt)
    verified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
