"""Step 2: one register transaction for a batch: duplicates, agenda numbers, STAGED rows.

Agenda numbers are allocated in the same transaction as their rows, so a crash rolls both
back: numbers stay gapless and are never reused. One row per content (a unique key), so a
scan is never registered twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from naskahd import audit, naming
from naskahd.categories import EXEMPT
from naskahd.config import Config
from naskahd.filing.items import Stored
from naskahd.filing.keys import ExemptKeys
from naskahd.errors import NaskahdError
from naskahd.i18n import N_
from naskahd.letters import index
from naskahd.register import AgendaCounter, Document, DocumentState, format_agenda
from naskahd.register.numbering import agenda_stem, allocate_numbers


FIRST_YEAR = 2020  # no letter is numbered in a year before this one


class ClockError(NaskahdError):
    message = N_("the system clock says the year is {year}, but letters are already numbered in {newest}: "
                 "set the date and time of this computer (timedatectl), then naskahd continues by itself")


class Entry:
    """Writes a batch's rows; the daemon's thread is the register's only writer."""

    def __init__(
        self, config: Config, sessions: sessionmaker[Session], seal_name: Callable[[bytes], bytes], keys: ExemptKeys,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.seal_name = seal_name
        self.keys = keys
        self._folders: dict[tuple[Path, Path], str] = {}
        self.index_now = True  # set per batch by Filer.finish

    def year(self, s: Stored) -> int:
        return s.received_at.astimezone(self.config.timezone).year

    def register(self, stored: Sequence[Stored]) -> None:
        """One transaction for the batch: a few statements, not a few per document.

        Sets each ``s.doc`` (a new row) or ``s.duplicate_of`` (the row whose content it has).
        ClockError (nothing registered) when the clock's year is plainly wrong. With
        ``self.index_now`` the new rows enter the search index in this transaction; without
        it (a burst: Filer.finish) they are found by the search's scan above the index until
        ``Filer.catch_up_index`` takes them in.
        """
        index_now = self.index_now
        with self.sessions.begin() as session:
            self._check_year(session, {self.year(s) for s in stored})
            shas = {s.sha256 for s in stored}
            registered = {d.sha256: d for d in session.scalars(select(Document).where(Document.sha256.in_(shas)))}
            first: dict[str, Stored] = {}  # the first copy of each new content in this batch
            new: list[Stored] = []
            for s in stored:
                if s.sha256 in registered:
                    s.duplicate_of = registered[s.sha256]
                elif s.sha256 not in first:
                    first[s.sha256] = s
                    new.append(s)
            wanted: dict[tuple[str, int], int] = {}
            for s in new:
                key = (s.item.category, self.year(s))
                wanted[key] = wanted.get(key, 0) + 1
            numbers: dict[tuple[str, int], Iterator[int]] = {
                key: iter(allocate_numbers(session, key[0], key[1], count)) for key, count in wanted.items()
            }
            rows = [self._new_row(s, next(numbers[(s.item.category, self.year(s))])) for s in new]
            if rows:
                # One INSERT ... VALUES (...), (...) RETURNING for the batch (ORM bulk insert):
                # far less CPU than add_all() + flush(), which tracks every attribute of every
                # object. The rows come back in no promised order: matched by agenda number.
                docs = {d.agenda: d for d in session.scalars(insert(Document).returning(Document), rows)}
                for s, row in zip(new, rows, strict=True):
                    s.doc = docs[row["agenda"]]
                audit.documents_filed(session, (s.doc for s in new))
            if rows and index_now:  # the register's search index (letters/index.py), in the same transaction
                index.catch_up(session, new=[index.New(s.doc.id, s.doc.category, s.doc.number, s.doc.original_name) for s in new])
            for s in stored:
                if s.doc is None and s.duplicate_of is None:  # a later copy within this batch
                    s.duplicate_of, s.duplicate_in_batch = first[s.sha256].doc, True

    def _check_year(self, session: Session, years: set[int]) -> None:
        """A year before naskahd existed, or before the newest year already numbered, is a
        wrong clock (a server whose battery died boots in 2000): numbering letters in it
        would start a year's count again. Refused until the clock is set."""
        if not years:
            return
        newest = session.scalar(select(func.max(AgendaCounter.year))) or FIRST_YEAR
        if min(years) < max(newest, FIRST_YEAR):
            raise ClockError(year=min(years), newest=max(newest, FIRST_YEAR))

    def _folder(self, directory: Path) -> str:
        """``directory`` (a month's folder of the archive) relative to the archive, POSIX:
        worked out once per folder, not per document (pathlib's parsing, per row)."""
        key = (directory, self.config.archive)
        rel = self._folders.get(key)
        if rel is None:
            rel = self._folders[key] = directory.relative_to(self.config.archive).as_posix()
            assert rel != ".", directory
        return rel

    def _new_row(self, s: Stored, number: int) -> dict[str, Any]:
        """The values of ``s``'s new Document row."""
        category, year = s.item.category, self.year(s)
        raw_name = os.fsencode(os.path.basename(s.item.relpath))
        exempt = category == EXEMPT
        name = naming.archive_name(agenda_stem(number, category, year), raw_name, exempt=exempt)
        archive_path = f"{self._folder(s.staged.directory)}/{name}"
        return dict(
            agenda=format_agenda(number, category, year), category=category, year=year, number=number,
            original_name=None if exempt else naming.display_name(raw_name),
            original_name_raw=None if exempt else raw_name,
            original_name_sealed=self.seal_name(raw_name) if exempt else None,
            source_relpath=self.keys.path(s.item.relpath) if exempt else naming.recorded_relpath(s.item.relpath, exempt=False),
            archive_path=archive_path,
            temp_name=s.staged.path.name, size=s.size, sha256=s.sha256,
            ciphertext_sha256=s.sealed.ciphertext_sha256 if s.sealed else None,
            ciphertext_size=s.sealed.ciphertext_size if s.sealed else None,
            recipients=json.dumps(list(s.sealed.recipients)) if s.sealed else None,
            detected_type=s.item.detected_type, received_at=s.received_at, state=DocumentState.STAGED,
        )
