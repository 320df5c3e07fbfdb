"""Store and register: one batch of settled files from the drop folder to committed rows.

The order keeps a document safe at every instant (docs/architecture.md has the table):

1. copy (or age-encrypt) each source into a temp file in its archive folder, hashing as
   it goes; fsync. Exempt ciphertext is read back and checked before anything else.
2. one register transaction for the batch: duplicates are found by SHA-256, agenda
   numbers are allocated, rows are inserted as STAGED with their temp names. Commit.
3. rename each temp file to its final name (never overwriting); fsync the folders.
4. remove each source, only if it is still the very file that was copied; fsync.
5. mark the rows FILED (or SOURCE_STUCK when the source could not be removed).

Step 1 runs on the store threads (``begin``): every copy is written with its writeback
started, then the batch's copies are fsynced together. Steps 2 to 5 run on the caller's
thread (``finish``): the daemon begins the next batch before it finishes this one, so
the disk work of one overlaps the register work of the other. The register keeps one
writer.

Step 1 may also have been done early (``prestore``), on the early threads, while the file
sat out the rest of its settle time: ``begin`` uses that copy only if the file is
still the very same (same signature and category) when it is due, and throws it away
otherwise. Until then it is only a temp file, like any copy before step 2.

A crash before 2 leaves orphan temp files (removed at start-up: the sources are still in
the drop folder). A crash after 2 leaves STAGED rows, which ``reconcile()`` finishes from
the temp file or, failing that, from the source. Agenda numbers are allocated in the
same transaction as their rows, so they stay gapless and are never reused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from naskahd import complete, durable, naming
from naskahd.categories import EXEMPT
from naskahd.config import DUPLICATES_FOLDER, REVIEW_FOLDER, Config
from naskahd.i18n import _
from naskahd.log import get_logger
from naskahd.register import Document, DocumentState, Duplicate, ReviewItem, format_agenda
from naskahd.register.numbering import allocate_numbers
from naskahd.register.numbering import agenda_stem
from naskahd.settle import Signature

CHUNK = 1 << 20
# Step 1 (copy or encrypt, hash, fsync) runs on this many threads: it is mostly kernel
# work that drops the GIL, so a batch's stores overlap each other's fsync, and the next
# batch's stores overlap this one's register work (see Filer.begin).
STORE_THREADS = 2
# Early copies (Filer.prestore) run on their own threads, so a due batch never queues behind
# them; at most EARLY_MAX at a time (each is a temp file in the archive until it is used).
# Two keep ahead of a fast burst with the content check on (docs/benchmarks-filing.md).
EARLY_THREADS = 2
EARLY_MAX = 2048
# An early copy is made only if any later write must change the file's ctime, which the
# kernel sets on every change to the current time, in the filesystem's granularity: the
# ctime must be older than the copy's start by more than a clock tick. A filesystem whose
# times are whole seconds (vfat, ext4 with 128-byte inodes, some NAS) gets no early copies:
# a rewrite within the same second, at the same size, would not show in the signature, and
# the source, holding newer bytes than the copy, would be removed.
EARLY_CTIME_MARGIN_NS = 50_000_000
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Outcome(Enum):
    FILED = "filed"
    DUPLICATE = "duplicate"
    CHANGED = "changed"  # the file changed while it was being taken: let it settle again
    GONE = "gone"  # vanished or renamed while being taken: no row was written
    FAILED = "failed"  # an I/O error: retried later
    HELD = "held"  # cannot be filed now (exempt without a recipient): parked
    STUCK = "source_stuck"  # filed, but the source could not be removed


@dataclass(frozen=True)
class Ready:
    """A settled, complete, classified file in the drop folder."""

    relpath: str
    category: str
    signature: Signature
    detected_type: str | None = None


@dataclass
class Result:
    item: Ready
    outcome: Outcome
    detail: str = ""
    agenda: str | None = None


@dataclass
class _Stored:
    item: Ready
    staged: durable.Staged
    sha256: str
    size: int
    received_at: dt.datetime
    sealed: Any = None  # age.Sealed for exempt documents
    completeness: complete.Completeness | None = None  # made by an early copy (Filer.early_check)
    doc: Document | None = None
    duplicate_of: Document | None = None
    result: Result | None = field(default=None)


@dataclass(frozen=True)
class Batch:
    """Ready files whose step 1 runs on the store threads (Filer.begin); Filer.finish ends it."""

    items: tuple[Ready, ...]
    stored: Future[tuple[list[Result], list[_Stored]]]  # Filer._sync_stores


@dataclass(frozen=True)
class _Early:
    """Step 1 done ahead for ``item`` (Filer.prestore), before the file was due."""

    item: Ready
    stored: Future[_Stored | Result]


def _discard_copy(future: Future[_Stored | Result]) -> None:
    """Remove the temp file of a finished store that will not be used."""
    if not future.cancelled() and future.exception() is None:
        r = future.result()
        if isinstance(r, _Stored):
            r.staged.discard()


def _shows_later_writes(st: os.stat_result, now_ns: int) -> bool:
    """Would any write from ``now_ns`` on change this file's ctime? (EARLY_CTIME_MARGIN_NS)"""
    return st.st_ctime_ns % 1_000_000_000 != 0 and st.st_ctime_ns <= now_ns - EARLY_CTIME_MARGIN_NS


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _source_matches(path: Path, st0: os.stat_result) -> bool:
    """Is the file at ``path`` still the very file that was copied (same inode, unchanged)?"""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(st.st_mode) and Signature.of(st) == Signature.of(st0)


def move_aside(source: Path, folder: Path, name: str) -> str:
    """Rename ``source`` into ``folder`` under ``name`` or a numbered variant; never overwrite.

    A rename within the drop folder: exempt plaintext never leaves it. Returns the name used.
    """
    durable.makedirs(folder)
    candidate = name
    for n in range(2, 10_000):
        try:
            durable.rename_noreplace(source, folder / candidate)
        except FileExistsError:
            candidate = naming.numbered(name, n)
            continue
        durable.fsync_dir(folder)
        durable.fsync_dir(source.parent)
        return candidate
    raise FileExistsError(errno.EEXIST, "no free name", str(folder / name))


class Filer:
    """The register's single writer: files batches of ready files; reconciles at start-up."""

    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        recipients: Sequence[Any] = (),
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.recipients = list(recipients)
        self.clock = clock
        self.log = get_logger("filing")
        self._pool: ThreadPoolExecutor | None = None
        self._early_pool: ThreadPoolExecutor | None = None
        self._early: dict[str, _Early] = {}  # relpath -> its early copy

    def close(self) -> None:
        """Stop the store threads (after the batches begun are finished); remove early copies."""
        for relpath in list(self._early):
            self.discard_early(relpath)
        for pool in (self._early_pool, self._pool):
            if pool is not None:
                pool.shutdown()  # the early copies not started were cancelled just above
        self._pool = self._early_pool = None

    # -- paths ---------------------------------------------------------------------------
    def source_path(self, relpath: str | bytes) -> Path:
        return self.config.drop / os.fsdecode(relpath)

    def _target_dir(self, category: str, when: dt.datetime) -> Path:
        local = when.astimezone(self.config.timezone)
        return self.config.archive / category / f"{local.year:04d}" / f"{local.month:02d}"

    # -- step 1: copy or encrypt into a temp file ----------------------------------------------
    def _store(self, item: Ready, check: bool = False, early: bool = False) -> _Stored | Result:
        """Step 1 for ``item``; with ``check``, the content check too, on the same open file.

        ``early``: before the file is due (prestore), and only where a later write must
        show in the signature (EARLY_CTIME_MARGIN_NS); a refusal is a FAILED result,
        which decides nothing (the file is copied when due).
        """
        exempt = item.category == EXEMPT
        if exempt and not self.recipients:
            return Result(item, Outcome.HELD, self.config.recipient_problem or "")
        source = self.source_path(item.relpath)
        try:
            fd = os.open(source, OPEN_FLAGS)
        except FileNotFoundError:
            return Result(item, Outcome.GONE)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # it became a symlink: never followed
                return Result(item, Outcome.CHANGED, _("it became a symbolic link"))
            from naskahd import reasons  # a code: shown in the reader's language, with the user and the fix

            where = source.parent if exempt else source  # an exempt letter's name is never shown
            return Result(item, Outcome.FAILED, reasons.encode("cannot_open", error=reasons.os_error(exc, where)))
        with open(fd, "rb", buffering=0, closefd=True) as src:
            st0 = os.fstat(fd)
            if not stat.S_ISREG(st0.st_mode) or Signature.of(st0) != item.signature:
                return Result(item, Outcome.CHANGED)
            if early and not _shows_later_writes(st0, time.time_ns()):
                return Result(item, Outcome.FAILED, "no early copy: its ctime is too recent or too coarse")
            received_at = self.clock()
            target_dir = self._target_dir(item.category, received_at)
            try:
                durable.makedirs(target_dir)
                staged = durable.Staged(target_dir)
            except OSError as exc:
                from naskahd import reasons

                return Result(item, Outcome.FAILED,
                              reasons.encode("cannot_write_archive", error=reasons.os_error(exc, target_dir)))
            try:
                if exempt:
                    from naskahd import age

                    sealed = age.encrypt_stream(src, staged.file, self.recipients)
                    sha, size = sealed.plaintext_sha256, sealed.plaintext_size
                else:
                    sealed = None
                    sha, size = self._copy(src, staged.file)
                if exempt:  # fsynced now: its read-back check below must see the disk's copy
                    staged.sync(folder=False)
                else:  # fsynced with the rest of the batch (_sync_stores)
                    staged.start_writeback()
                if sealed is not None:
                    # Read the written ciphertext back and open it with the file key still in
                    # memory: the plaintext is removed only if this reproduces its hash.
                    with open(staged.path, "rb") as written:
                        age.verify_sealed(written, sealed)
                completeness = complete.check_fd(fd, size) if check else None
                if Signature.of(os.fstat(fd)) != item.signature or size != item.signature.size:
                    staged.discard()
                    return Result(item, Outcome.CHANGED, _("it changed while it was being copied"))
            except OSError as exc:
                staged.discard()
                return Result(item, Outcome.FAILED, _("cannot copy it: {error}").format(error=exc.strerror))
            except Exception as exc:
                staged.discard()
                self.log.error("document.store_failed", path=naming.shown_relpath(item.relpath, exempt=exempt), error=str(exc))
                return Result(item, Outcome.FAILED, str(exc))
        if not _source_matches(source, st0):
            # Renamed or replaced while being copied: no row; the new name is found by events.
            staged.discard()
            return Result(item, Outcome.GONE)
        return _Stored(item, staged, sha, size, received_at, sealed, completeness)

    @staticmethod
    def _copy(src: Any, dst: Any) -> tuple[str, int]:
        h = hashlib.sha256()
        size = 0
        while chunk := src.read(CHUNK):
            h.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        return h.hexdigest(), size

    # -- step 2: one transaction for the batch -------------------------------------------------
    def _register(self, stored: list[_Stored]) -> None:
        """One transaction for the batch: a few statements, not a few per document."""
        with self.sessions.begin() as session:
            shas = {s.sha256 for s in stored}
            registered = {d.sha256: d for d in session.scalars(select(Document).where(Document.sha256.in_(shas)))}
            first: dict[str, _Stored] = {}  # the first copy of each new content in this batch
            new: list[_Stored] = []
            for s in stored:
                if s.sha256 in registered:
                    s.duplicate_of = registered[s.sha256]
                elif s.sha256 not in first:
                    first[s.sha256] = s
                    new.append(s)
            numbers: dict[tuple[str, int], Iterator[int]] = {}
            wanted: dict[tuple[str, int], int] = {}
            for s in new:
                key = (s.item.category, self._year(s))
                wanted[key] = wanted.get(key, 0) + 1
            for key, count in wanted.items():
                numbers[key] = iter(allocate_numbers(session, key[0], key[1], count))
            rows = [self._new_row(s, next(numbers[(s.item.category, self._year(s))])) for s in new]
            if rows:
                # One INSERT ... VALUES (...), (...) RETURNING for the batch (ORM bulk insert):
                # far less CPU than add_all() + flush(), which tracks every attribute of every
                # object. The rows come back in no promised order: matched by agenda number.
                docs = {d.agenda: d for d in session.scalars(insert(Document).returning(Document), rows)}
                for s, row in zip(new, rows, strict=True):
                    s.doc = docs[row["agenda"]]
            for s in stored:
                if s.doc is None and s.duplicate_of is None:  # a later copy within this batch
                    s.duplicate_of = first[s.sha256].doc

    def _year(self, s: _Stored) -> int:
        return s.received_at.astimezone(self.config.timezone).year

    def _new_row(self, s: _Stored, number: int) -> dict[str, Any]:
        """The values of ``s``'s new Document row."""
        category, year = s.item.category, self._year(s)
        raw_name = os.fsencode(os.path.basename(s.item.relpath))
        exempt = category == EXEMPT
        name = naming.archive_name(agenda_stem(number, category, year), raw_name, exempt=exempt)
        archive_path = (s.staged.directory / name).relative_to(self.config.archive).as_posix()
        return dict(
            agenda=format_agenda(number, category, year), category=category, year=year, number=number,
            original_name=None if exempt else naming.display_name(raw_name),
            original_name_raw=None if exempt else raw_name,
            original_name_sealed=self._seal_name(raw_name) if exempt else None,
            source_relpath=naming.recorded_relpath(s.item.relpath, exempt=exempt), archive_path=archive_path,
            temp_name=s.staged.path.name, size=s.size, sha256=s.sha256,
            ciphertext_sha256=s.sealed.ciphertext_sha256 if s.sealed else None,
            ciphertext_size=s.sealed.ciphertext_size if s.sealed else None,
            recipients=json.dumps(list(s.sealed.recipients)) if s.sealed else None,
            detected_type=s.item.detected_type, received_at=s.received_at, state=DocumentState.STAGED,
        )

    def _seal_name(self, raw_name: bytes) -> bytes:
        from naskahd import age

        return age.encrypt_bytes(raw_name, self.recipients)

    # -- the whole batch -----------------------------------------------------------------------
    def file_batch(self, items: Sequence[Ready]) -> list[Result]:
        """Steps 1 to 5 for ``items``; one Result per item."""
        return self.finish(self.begin(items))

    def begin(self, items: Sequence[Ready]) -> Batch:
        """Start step 1 for ``items`` on the store threads and return at once.

        The daemon finishes the previous batch meanwhile, so one batch's copies and fsyncs
        overlap the other's register work. Step 1 writes nothing but temp files in the
        archive: a crash before ``finish`` leaves only those, and reconcile() removes them.
        """
        if self._pool is None:
            self._pool = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="naskahd-store")
        stores: list[tuple[Ready, Future[_Stored | Result], bool]] = []  # (item, its step 1, early?)
        for item in items:
            early = self._early.pop(item.relpath, None)
            if early is not None and (early.item.signature, early.item.category) == (item.signature, item.category):
                # Still the very file that was copied. An early copy not started yet (the
                # early threads are busy with large files) is copied now on the store threads.
                if not early.stored.cancel():
                    stores.append((item, early.stored, True))
                    continue
            elif early is not None:
                self._discard(early)
            stores.append((item, self._pool.submit(self._store, item), False))
        # Queued behind the stores (first in, first out), so it cannot wait on work queued
        # after it; early copies run on their own thread, which never waits on this one.
        return Batch(tuple(items), self._pool.submit(self._sync_stores, stores))

    # -- step 1 ahead of time ------------------------------------------------------------------
    def prestore(self, item: Ready) -> None:
        """Start step 1 for ``item`` now, before it is due (settle.Settler.early).

        The copy is made and fsynced on an early thread while the file sits out the rest
        of its settle time; ``begin`` uses it if the file is unchanged when due. A burst's
        copying is then done by the time its files are due, and only the register work is
        left. Nothing is registered or removed here: a crash leaves an orphan temp file,
        which reconcile() removes.
        """
        self.discard_early(item.relpath)
        if len(self._early) >= EARLY_MAX:
            return  # copied when due, as without early copies
        if self._early_pool is None:
            self._early_pool = ThreadPoolExecutor(EARLY_THREADS, thread_name_prefix="naskahd-early")
        self._early[item.relpath] = _Early(item, self._early_pool.submit(self._store_synced, item))

    def _store_synced(self, item: Ready) -> _Stored | Result:
        r = self._store(item, check=self.config.content_check, early=True)
        return self._synced(r) if isinstance(r, _Stored) else r

    def early_check(self, relpath: str, signature: Signature | None) -> complete.Completeness | None:
        """The content check's verdict (complete.Completeness) made by ``relpath``'s early
        copy, if that copy is done and was made of the file with ``signature``; else None.

        The same bytes give the same verdict: the daemon need not read them again. Whether
        a writer still holds the file open is a question of now, not of the bytes: it is
        asked again when the file is due (service.Daemon._completeness).
        """
        early = self._early.get(relpath)
        if early is None or early.item.signature != signature or not early.stored.done():
            return None
        if early.stored.cancelled() or early.stored.exception() is not None:
            return None
        r = early.stored.result()
        return r.completeness if isinstance(r, _Stored) else None

    def discard_early(self, relpath: str) -> None:
        """Throw away ``relpath``'s early copy, if any (the file changed, went, or was reviewed)."""
        early = self._early.pop(relpath, None)
        if early is not None:
            self._discard(early)

    def prune_early(self, signature_of: Callable[[str], Signature | None]) -> None:
        """Throw away the early copies of files whose signature is no longer the copied one."""
        for relpath, early in list(self._early.items()):
            if signature_of(relpath) != early.item.signature:
                self.discard_early(relpath)

    @staticmethod
    def _discard(early: _Early) -> None:
        if not early.stored.cancel():  # running or done: its temp file goes when it is done
            early.stored.add_done_callback(_discard_copy)

    def _synced(self, s: _Stored) -> _Stored | Result:
        """``s`` with its copy fsynced, or a FAILED result with the temp file removed."""
        try:
            s.staged.sync(folder=False)  # the folder's entry is made durable by the final rename's fsync
        except OSError as exc:
            s.staged.discard()
            return Result(s.item, Outcome.FAILED, _("cannot copy it: {error}").format(error=exc.strerror))
        return s

    def _sync_stores(
        self, stores: list[tuple[Ready, Future[_Stored | Result], bool]]
    ) -> tuple[list[Result], list[_Stored]]:
        """The end of step 1, on a store thread: fsync the batch's copies, all written first.

        Each copy's writeback was started when it was written, so by now most of the data
        is on its way and the fsyncs share the disk's work (journal commits, cache
        flushes): cheaper than one fsync right after each copy (docs/benchmarks-filing.md).
        Returns (results so far, copies to register).
        """
        results: list[Result] = []
        written: list[_Stored] = []
        error: BaseException | None = None
        for item, future, early in stores:
            try:
                r = future.result()
                if early and isinstance(r, _Stored) and r.staged.directory != self._target_dir(item.category, self.clock()):
                    # Copied in another month (or year) than now: numbered and filed by now.
                    r.staged.discard()
                    r = self._store(item)
                elif early and isinstance(r, Result):  # an early attempt decides nothing: try now
                    r = self._store(item)
            except BaseException as exc:  # a bug in _store: no row for anything in the batch
                error = error or exc
                continue
            r.item = item  # an early copy was made for an item without the content check's type
            if isinstance(r, Result):
                results.append(r)
            else:
                written.append(r)
        if error is not None:
            for s in written:
                s.staged.discard()
            raise error
        stored: list[_Stored] = []
        for s in written:
            r = self._synced(s)  # nothing left to do for an early copy: it was fsynced
            if isinstance(r, Result):
                results.append(r)
            else:
                stored.append(r)
        return results, stored

    def finish(self, batch: Batch) -> list[Result]:
        """Wait for ``batch``'s step 1, then steps 2 to 5."""
        results, stored = batch.stored.result()
        if not stored:
            return results
        try:
            self._register(stored)
        except Exception as exc:
            for s in stored:
                s.staged.discard()
            self.log.error("register.commit_failed", error=str(exc), files=len(stored))
            return results + [Result(s.item, Outcome.FAILED, _("register: {error}").format(error=exc)) for s in stored]
        # step 3: final names
        folders: set[Path] = set()
        for s in stored:
            if s.doc is None:
                continue
            final = self.config.archive / s.doc.archive_path
            try:
                durable.rename_noreplace(s.staged.path, final)
                folders.add(final.parent)
            except OSError as exc:
                # Left STAGED: reconcile() retries and reports. The row stays: never filed twice.
                self.log.error("document.publish_failed", agenda=s.doc.agenda, error=str(exc))
                s.result = Result(s.item, Outcome.FAILED, str(exc), s.doc.agenda)
        for folder in folders:
            durable.fsync_dir(folder)
        # step 4: remove sources (and move duplicates aside)
        drop_folders: set[Path] = set()
        finished: list[tuple[_Stored, DocumentState]] = []
        duplicates: list[tuple[_Stored, str]] = []
        for s in stored:
            if s.result is not None:
                continue
            source = self.source_path(s.item.relpath)
            if s.duplicate_of is not None:
                s.staged.discard()
                if self._is_unfinished(s):
                    # The very scan of a row that is not finished (its source could not be
                    # removed, or its rename failed): finish that row, never file it again.
                    outcome = self._finish(s.duplicate_of)
                    if isinstance(outcome, str):
                        s.result = Result(s.item, Outcome.FAILED, outcome, s.duplicate_of.agenda)
                    else:
                        done = Outcome.FILED if outcome is DocumentState.FILED else Outcome.STUCK
                        s.result = Result(s.item, done, "", s.duplicate_of.agenda)
                    continue
                try:
                    moved = move_aside(source, self.config.duplicates_dir, os.path.basename(s.item.relpath))
                except OSError as exc:
                    s.result = Result(s.item, Outcome.FAILED, _("cannot move the duplicate aside: {error}").format(error=exc.strerror))
                    continue
                duplicates.append((s, moved))
                s.result = Result(s.item, Outcome.DUPLICATE, moved, s.duplicate_of.agenda)
                continue
            assert s.doc is not None
            state = self._remove_source(source, s)
            drop_folders.add(source.parent)
            finished.append((s, state))
        for folder in drop_folders:
            with contextlib.suppress(OSError):
                durable.fsync_dir(folder)
        # step 5: the rows say it is done
        now = self.clock()
        with self.sessions.begin() as session:
            for state in {state for _s, state in finished}:
                ids = [s.doc.id for s, st in finished if st is state and s.doc is not None]
                session.execute(update(Document).where(Document.id.in_(ids)).values(state=state, temp_name=None))
            for s, moved in duplicates:
                assert s.duplicate_of is not None
                exempt = s.item.category == EXEMPT
                session.add(Duplicate(
                    document_id=s.duplicate_of.id, source_relpath=naming.recorded_relpath(s.item.relpath, exempt=exempt),
                    moved_to="" if exempt else moved, detected_at=now,
                ))
        for s, state in finished:
            assert s.doc is not None
            outcome = Outcome.FILED if state is DocumentState.FILED else Outcome.STUCK
            s.result = Result(s.item, outcome, "", s.doc.agenda)
            self._log_filed(s, state)
        for s, moved in duplicates:
            assert s.duplicate_of is not None
            exempt = s.item.category == EXEMPT
            self.log.info("document.duplicate", path=naming.shown_relpath(s.item.relpath, exempt=exempt),
                          duplicate_of=s.duplicate_of.agenda, moved_to=f"{DUPLICATES_FOLDER}/{naming.WITHHELD if exempt else moved}",
                          sha256=s.sha256)
        return results + [s.result for s in stored if s.result is not None]

    def _is_unfinished(self, s: _Stored) -> bool:
        d = s.duplicate_of
        exempt = s.item.category == EXEMPT
        return (
            d is not None and d.state is not DocumentState.FILED
            and d.source_relpath == naming.recorded_relpath(s.item.relpath, exempt=exempt)
        )

    def _remove_source(self, source: Path, s: _Stored, quiet: bool = False) -> DocumentState:
        try:
            st = os.lstat(source)
        except FileNotFoundError:
            return DocumentState.FILED
        if Signature.of(st) != s.item.signature:
            # Rewritten after it was taken: the new content is a new file, filed on its own.
            return DocumentState.FILED
        try:
            os.unlink(source)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if not quiet:
                self.log.warning("document.source_stuck", agenda=s.doc.agenda if s.doc else None,
                                 path=naming.shown_relpath(s.item.relpath, exempt=s.item.category == EXEMPT), error=exc.strerror)
            return DocumentState.SOURCE_STUCK
        return DocumentState.FILED

    def _log_filed(self, s: _Stored, state: DocumentState) -> None:
        assert s.doc is not None
        fields: dict[str, Any] = dict(
            agenda=s.doc.agenda, category=s.doc.category, archive_path=s.doc.archive_path,
            size=s.size, sha256=s.sha256, detected_type=s.item.detected_type,
        )
        if s.doc.category != EXEMPT:
            fields["path"] = s.item.relpath  # exempt names are withheld from logs too
        self.log.info("document.registered", **fields)
        if s.sealed is not None:
            self.log.info("document.encrypted", agenda=s.doc.agenda, ciphertext_sha256=s.sealed.ciphertext_sha256, recipients=len(s.sealed.recipients))

    # -- review ------------------------------------------------------------------------------
    def to_review(self, relpath: str, reason: str, *, exempt: bool = False) -> str | None:
        """Move a drop-folder entry to the review folder (a rename: never opened, never followed)."""
        source = self.source_path(relpath)
        try:
            moved = move_aside(source, self.config.review_dir, os.path.basename(relpath))
        except FileNotFoundError:
            return None
        with self.sessions.begin() as session:
            session.add(ReviewItem(
                name_sha256=naming.name_key(moved), source_relpath=naming.recorded_relpath(relpath, exempt=exempt),
                reason=reason, moved_at=self.clock(),
            ))
        from naskahd import reasons

        self.log.warning("document.review", path=naming.shown_relpath(relpath, exempt=exempt),
                         moved_to=f"{REVIEW_FOLDER}/{naming.WITHHELD if exempt else moved}", reason=reasons.render(reason))
        return moved

    # -- start-up reconciliation --------------------------------------------------------------
    def reconcile(self) -> list[str]:
        """Finish or roll back whatever a crash left half-done. Returns problems for a person."""
        problems: list[str] = []
        with self.sessions() as session:
            rows = session.scalars(
                select(Document).where(Document.state.in_([DocumentState.STAGED, DocumentState.SOURCE_STUCK]))
            ).all()
        for doc in rows:
            outcome = self._finish(doc)
            if isinstance(outcome, str):
                problems.append(outcome)
        keep = {(self.config.archive / r.archive_path).parent / r.temp_name for r in rows if r.temp_name}
        for temp in self._temp_files():
            if temp not in keep:
                # A copy whose row was never committed: its source is still in the drop folder.
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
                self.log.info("archive.temp_removed", path=str(temp.relative_to(self.config.archive)))
        return problems

    def _temp_files(self) -> list[Path]:
        found = []
        for dirpath, _dirs, files in os.walk(self.config.archive):
            found += [Path(dirpath) / f for f in files if f.startswith(durable.TEMP_PREFIX)]
        return found

    def _archive_ok(self, doc: Document, path: Path) -> bool:
        want = doc.ciphertext_sha256 if doc.category == EXEMPT else doc.sha256
        return path.is_file() and sha256_file(path) == want

    def _finish(self, doc: Document) -> DocumentState | str:
        """Bring a STAGED or SOURCE_STUCK row to its end state; a problem for a person if it cannot."""
        try:
            outcome = self._finish_steps(doc)
        except OSError as exc:
            outcome = _("document {agenda}: cannot finish filing: {error}").format(agenda=doc.agenda, error=exc)
        if isinstance(outcome, str):
            self.log.error("document.reconcile_failed", agenda=doc.agenda, problem=outcome)
        return outcome

    def _finish_steps(self, doc: Document) -> DocumentState | str:
        final = self.config.archive / doc.archive_path
        source = self._find_source(doc)
        if not final.exists():
            temp = final.parent / doc.temp_name if doc.temp_name else None
            if temp is not None and temp.exists() and self._archive_ok(doc, temp):
                durable.rename_noreplace(temp, final)
                durable.fsync_dir(final.parent)
            elif source is not None:
                self._restore_from_source(doc, source, final)
            else:
                return _(
                    "document {agenda}: its archive copy is missing and its source is gone; "
                    "look for {name} and drop it again"
                ).format(agenda=doc.agenda, name=naming.display_name(doc.source_relpath) if doc.source_relpath else naming.WITHHELD)
        elif not self._archive_ok(doc, final):
            return _("document {agenda}: the archive file {path} does not match the register; keep it and call for help").format(agenda=doc.agenda, path=doc.archive_path)
        state = DocumentState.FILED
        if source is not None:
            try:
                source.unlink()
                durable.fsync_dir(source.parent)
            except OSError:
                state = DocumentState.SOURCE_STUCK
        with self.sessions.begin() as session:
            row = session.get(Document, doc.id)
            assert row is not None
            row.state, row.temp_name = state, None
        self.log.info("document.reconciled", agenda=doc.agenda, state=state.value)
        return state

    def _find_source(self, doc: Document) -> Path | None:
        """The scan a row was made from, if it is still in the drop folder with the same content.

        Exempt rows do not record their path, so the exempt folders are searched by size
        and hash (a rare path: only after a crash).
        """
        if doc.source_relpath:
            candidates = [self.source_path(doc.source_relpath)]
        else:
            from naskahd import watch
            from naskahd.classify import classify

            candidates = [
                self.source_path(rel) for rel, st in watch.scan(self.config)
                if stat.S_ISREG(st.st_mode) and st.st_size == doc.size and classify(rel, self.config.rules) == EXEMPT
            ]
        for path in candidates:
            try:
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and st.st_size == doc.size and sha256_file(path) == doc.sha256:
                    return path
            except OSError:
                continue
        return None

    def _restore_from_source(self, doc: Document, source: Path, final: Path) -> None:
        """Redo step 1 from the source for a committed row whose temp file was lost."""
        durable.makedirs(final.parent)
        staged = durable.Staged(final.parent)
        try:
            with open(source, "rb") as src:
                if doc.category == EXEMPT:
                    from naskahd import age

                    sealed = age.encrypt_stream(src, staged.file, self.recipients)
                    staged.sync()
                    with open(staged.path, "rb") as check:
                        age.verify_sealed(check, sealed)
                    if sealed.plaintext_sha256 != doc.sha256:
                        raise OSError(errno.EIO, "source changed during reconciliation")
                    with self.sessions.begin() as session:
                        row = session.get(Document, doc.id)
                        assert row is not None
                        row.ciphertext_sha256, row.ciphertext_size = sealed.ciphertext_sha256, sealed.ciphertext_size
                        row.recipients = json.dumps(list(sealed.recipients))
                    doc.ciphertext_sha256 = sealed.ciphertext_sha256
                else:
                    sha, _size = self._copy(src, staged.file)
                    if sha != doc.sha256:
                        raise OSError(errno.EIO, "source changed during reconciliation")
            staged.publish(final)
        except BaseException:
            staged.discard()
            raise
