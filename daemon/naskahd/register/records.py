"""The register's tables for the audit trail and the generated reports (issue 20).

Kept apart from ``models.py`` so that the tables of the filing pipeline stay on one page.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from naskahd.register.models import Base, UTCDateTime


class AuditEvent(Base):
    """One event of the audit trail, hash-chained to the one before it (``naskahd.audit``).

    ``sha256`` is the SHA-256 of the row's canonical content, which includes ``seq`` and
    ``prev_sha256`` (the previous row's ``sha256``): a changed, inserted or deleted row
    breaks the chain from there on.
    """

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    event: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(Text)  # "daemon", or the name a person gave (--by)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON object of scalars
    prev_sha256: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # The agenda number the event is about (its details' "agenda" or "duplicate_of"), so a
    # document's events are found by an index (letters/view.py). Outside the hash: only a
    # way to find rows, whose hashed details say the same.
    agenda: Mapped[str | None] = mapped_column(String(32), index=True)


class AuditHead(Base):
    """A single row: the chain's last ``seq`` and ``sha256``.

    Appending starts by moving this row on (an UPDATE), which takes the write lock on
    SQLite and a row lock on PostgreSQL before the previous row is read: two writers never
    chain onto the same row.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))


class Report(Base):
    """A generated report: what it covered, how it was made, who reviewed and validated it."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # "monthly" (a calendar month) or "period"
    period_start: Mapped[str] = mapped_column(String(10))  # ISO date, office time, inclusive
    period_end: Mapped[str] = mapped_column(String(10))  # ISO date, office time, inclusive
    format: Mapped[str] = mapped_column(String(8))  # pdf | csv | json
    lang: Mapped[str] = mapped_column(String(8))
    sha256: Mapped[str] = mapped_column(String(64))  # of the file as first generated
    # SHA-256 of the register data the report was made from (report.data.fingerprint):
    # when it no longer matches, the report is out of date.
    data_sha256: Mapped[str] = mapped_column(String(64))
    # The data it was made from (zlib-compressed canonical JSON), so that it can be
    # rendered again identically whatever has changed in the register since.
    snapshot: Mapped[bytes] = mapped_column(LargeBinary)
    audit_seq: Mapped[int] = mapped_column(Integer)  # the chain head when it was generated
    audit_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reviewed_by: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    review_note: Mapped[str | None] = mapped_column(Text)
    validated_by: Mapped[str | None] = mapped_column(Text)
    validated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    validation_note: Mapped[str | None] = mapped_column(Text)
    # The audit chain's head right after the validation was recorded ("seq:sha256"),
    # printed on the validated report: an anchor kept outside the register.
    anchor: Mapped[str | None] = mapped_column(String(80))
