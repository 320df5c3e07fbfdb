"""Re-hash the archive and the drives against the register: missing, changed, unexpected.

Files are found by agenda number: the register says what must be where and its SHA-256
(the ``.age`` file's for exempt letters). Unexpected files are reported by path. Reads
only; the drive's files are read past the page cache.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from naskahd import durable
from naskahd.categories import EXEMPT
from naskahd.drives import copy, layout
from naskahd.drives.plan import FINAL
from naskahd.i18n import _
from naskahd.register import Copy, Document, Drive


ROOT_FILES = {".naskahd-root", ".naskahd-owner"}  # issue 15's installation marker (config.ROOT_MARKER/ROOT_OWNER on main)


@dataclass
class Findings:
    checked: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)  # agenda numbers
    changed: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # paths
    refused: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.unexpected or self.refused)

    def as_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "bytes": self.bytes, "missing": self.missing, "changed": self.changed,
                "unexpected": self.unexpected, "refused": self.refused, "ok": self.ok}


class Progress:
    """A progress line on a terminal: files, bytes, rate, time left. Silent otherwise."""

    def __init__(self, what: str, total_files: int, total_bytes: int, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.on = self.stream.isatty()
        self.what, self.files, self.total, self.total_bytes = what, 0, total_files, total_bytes
        self.done_bytes = 0
        self.start = self.last = time.monotonic()

    def step(self, size: int) -> None:
        self.files += 1
        self.done_bytes += size
        now = time.monotonic()
        if self.on and (now - self.last >= 0.2 or self.files == self.total):
            self.last = now
            rate = self.done_bytes / max(now - self.start, 1e-6)
            left = (self.total_bytes - self.done_bytes) / rate if rate > 0 else 0
            self.stream.write("\r" + _("{what}: {n}/{total} files, {mb:.1f} MB, {rate:.1f} MB/s, {left:.0f} s left").format(
                what=self.what, n=self.files, total=self.total, mb=self.done_bytes / 1e6, rate=rate / 1e6, left=left) + "\x1b[K")
            self.stream.flush()

    def end(self) -> None:
        if self.on:
            self.stream.write("\n")


def _hash_path(path: Path, drop_cache: bool = False) -> tuple[int, str] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return copy._hash_fd(fd, drop_cache=drop_cache)
    finally:
        os.close(fd)


def _expected(d: Document) -> tuple[int, str]:
    return (d.ciphertext_size or 0, d.ciphertext_sha256 or "") if d.category == EXEMPT else (d.size, d.sha256)


def _files_under(top: Path, skip: Callable[[str], bool]) -> Iterator[str]:
    for folder, dirs, files in os.walk(top):
        rel_folder = os.path.relpath(folder, top)
        dirs[:] = [d for d in dirs if not skip(os.path.normpath(os.path.join(rel_folder, d)))]
        for name in files:
            yield os.path.normpath(os.path.join(rel_folder, name))


def verify_archive(archive: Path, sessions: sessionmaker[Session]) -> Findings:
    f = Findings()
    with sessions() as s:
        docs = list(s.scalars(select(Document).where(Document.state.in_(FINAL)).order_by(Document.id)))
        staged = {d.archive_path for d in s.scalars(select(Document).where(Document.state.not_in(FINAL)))}
    progress = Progress(_("archive"), len(docs), sum(_expected(d)[0] for d in docs))
    known = set(staged)
    for d in docs:
        known.add(d.archive_path)
        want = _expected(d)
        got = _hash_path(archive / d.archive_path)
        f.checked += 1
        if got is None:
            f.missing.append(d.agenda)
        elif got != want:
            f.changed.append(d.agenda)
        f.bytes += got[0] if got else 0
        progress.step(got[0] if got else 0)
    progress.end()
    # Temp files of filing in progress are filing's own (start-up reconciliation removes
    # orphans); the installation's root marker and owner files are naskahd's too.
    for rel in _files_under(archive, lambda _r: False):
        name = os.path.basename(rel)
        if rel not in known and not name.startswith(durable.TEMP_PREFIX) and rel not in ROOT_FILES:
            f.unexpected.append(rel)
    return f


def verify_drive(root: copy.DriveRoot, mountpoint: Path, drive: Drive, sessions: sessionmaker[Session]) -> Findings:
    f = Findings()
    with sessions() as s:
        rows = list(s.execute(select(Copy, Document.agenda).join(Document, Document.id == Copy.document_id)
                              .where(Copy.drive_id == drive.id).order_by(Copy.document_id)))
    progress = Progress(drive.name, len(rows), sum(c.size for c, _a in rows))
    known = set()
    for c, agenda in rows:
        known.add(c.drive_path)
        got = root.hash_file(layout.on_drive(c.drive_path))
        f.checked += 1
        if got is None:
            f.missing.append(agenda)
        elif got != (c.size, c.sha256):
            f.changed.append(agenda)
        f.bytes += got[0] if got else 0
        progress.step(got[0] if got else 0)
    progress.end()
    top = mountpoint / layout.ROOT
    if top.is_dir():
        for rel in _files_under(top, lambda r: r == ".naskahd"):
            if rel not in known and not rel.rpartition("/")[2].startswith(durable.TEMP_PREFIX):  # a sync's, in flight
                f.unexpected.append(f"{layout.ROOT}/{rel}")
    return f


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
