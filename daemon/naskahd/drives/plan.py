"""What a drive lacks, from the register alone: the drive is never walked to find out.

``missing`` asks the register (documents whose archive copy is final and that have no
verified copy on the drive); ``assign`` is pure: it gives each one its path on the drive
(``names.drive_path``), deterministically in register order, and sets aside what the
drive's filesystem cannot hold (over 4 GiB on FAT32). The cost grows with what is new,
not with the size of the archive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import re
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from naskahd.categories import EXEMPT
from naskahd.drives import names
from naskahd.register import Copy, Document, DocumentState

FAT32_MAX = 4 * 1024**3 - 1  # bytes in one FAT32 file
FINAL = (DocumentState.FILED, DocumentState.SOURCE_STUCK)


class Wanted(NamedTuple):  # immutable tuples: a big sync makes one per document, cheaply
    document_id: int
    agenda: str
    category: str
    archive_path: str
    size: int  # of the archive file (the .age file for exempt letters)
    sha256: str  # of the archive file


class Item(NamedTuple):
    wanted: Wanted
    drive_path: str  # relative to naskah/ on the drive (planned), or to the drive's root (copied)


@dataclass(frozen=True)
class Plan:
    items: tuple[Item, ...]
    too_big: tuple[Wanted, ...]  # cannot go onto this filesystem at all

    @property
    def files(self) -> int:
        return len(self.items)

    @property
    def bytes(self) -> int:
        return sum(i.wanted.size for i in self.items)


def _lacking(session: Session, drive_id: int):  # type: ignore[no-untyped-def]
    """The WHERE clause of "final documents with no copy on this drive", cheap when it can be.

    Copies are made in register order, so normally every final document up to the highest
    one copied (M) is on the drive and what is lacking is simply ``id > M``: a range of the
    primary key. That holds exactly when the final documents up to M are as many as the
    drive's copies (two counts); otherwise (a file that failed, a row that was still staged
    during the last sync) the full anti-join finds the holes.
    """
    top = session.scalar(select(func.max(Copy.document_id)).where(Copy.drive_id == drive_id))
    if top is None:
        return Document.state.in_(FINAL)
    copies = session.scalar(select(func.count()).select_from(Copy).where(Copy.drive_id == drive_id))
    below = session.scalar(select(func.count()).select_from(Document).where(Document.id <= top, Document.state.in_(FINAL)))
    if copies == below:
        return (Document.id > top) & Document.state.in_(FINAL)
    on_drive = exists().where(Copy.drive_id == drive_id, Copy.document_id == Document.id)
    return Document.state.in_(FINAL) & ~on_drive


def missing(session: Session, drive_id: int, limit: int | None = None) -> list[Wanted]:
    query = select(
        Document.id, Document.agenda, Document.category, Document.archive_path,
        Document.size, Document.sha256, Document.ciphertext_size, Document.ciphertext_sha256,
    ).where(_lacking(session, drive_id)).order_by(Document.id)
    if limit is not None:
        query = query.limit(limit)
    out = []
    for id_, agenda, category, path, size, sha, csize, csha in session.execute(query):
        exempt = category == EXEMPT
        out.append(Wanted(id_, agenda, category, path, csize if exempt else size, csha if exempt else sha))
    return out


def pending(session: Session, drive_id: int) -> tuple[int, int]:
    """(files, bytes) the drive lacks, for ``status``: one aggregate query."""
    size = func.coalesce(Document.ciphertext_size, Document.size)
    row = session.execute(select(func.count(), func.coalesce(func.sum(size), 0)).where(_lacking(session, drive_id))).one()
    return int(row[0]), int(row[1])


_LEAD = re.compile(r"[0-9]*")
PER_NAME_QUERIES = 500  # up to this many new names, each is looked up alone


def taken_paths(session: Session, drive_id: int, wanted: Sequence[Wanted]) -> set[str]:
    """Folded drive paths already used on the drive that could clash with ``wanted``'s.

    Only names that start with the same digits are fetched (an index range per name): an
    archive name starts with its agenda number, which is unique in its folder, so this
    is usually zero or one row, not the whole folder.
    """
    taken: set[str] = set()
    if len(wanted) > PER_NAME_QUERIES:  # a big sync: one query per folder is cheaper
        prefixes = {folder_of(w.archive_path) + "/" for w in wanted}
    else:
        paths = [first_choice(w.archive_path) for w in wanted]
        prefixes = {f"{p.rpartition('/')[0]}/{_LEAD.match(p.rpartition('/')[2]).group()}" for p in paths}  # type: ignore[union-attr]
    for lo in prefixes:
        rows = session.scalars(select(Copy.drive_path).where(
            Copy.drive_id == drive_id, Copy.drive_path >= lo, Copy.drive_path < lo + "\U0010ffff"))
        taken |= names.folded(rows)
    return taken


def first_choice(archive_path: str) -> str:
    """The drive path ``archive_path`` gets when nothing clashes with it."""
    return names.drive_path(archive_path, set())


def folder_of(archive_path: str) -> str:
    return "/".join(names.component(p) for p in archive_path.split("/")[:-1])


def assign(wanted: Sequence[Wanted], taken: set[str], *, fstype: str | None) -> Plan:
    """Pure: each wanted document's path on the drive, in register order."""
    items, too_big = [], []
    fat = (fstype or "").lower() in ("vfat", "fat", "fat32", "msdos")
    for w in sorted(wanted, key=lambda w: w.document_id):
        if fat and w.size > FAT32_MAX:
            too_big.append(w)
            continue
        items.append(Item(w, names.drive_path(w.archive_path, taken)))
    return Plan(tuple(items), tuple(too_big))
