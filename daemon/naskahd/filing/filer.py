"""The Filer: the daemon's one entry into filing. Steps 1 to 5 for batches; reconcile.

Step 1 runs on the store threads (``begin``): every copy is written with its writeback
started, then the batch's copies are fsynced together. Steps 2 to 5 run on the caller's
thread (``finish``): the daemon begins the next batch before it finishes this one, so
the disk work of one overlaps the register work of the other. The register keeps one
writer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from naskahd import audit, complete, durable, naming, reasons
from naskahd.categories import DROP_FOLDER, EXEMPT
from naskahd.config import DUPLICATES_FOLDER, Config
from naskahd.filing.early import EarlyCopies
from naskahd.filing.entry import Entry
from naskahd.filing.items import Batch, Outcome, Ready, Result, Stored
from naskahd.filing.reconcile import Reconciler
from naskahd.filing.keys import ExemptKeys
from naskahd.filing.release import Release, Released
from naskahd.filing.store import Store, utcnow
from naskahd.i18n import _
from naskahd.letters import index
from naskahd.log import get_logger
from naskahd.register import Document, DocumentState, Duplicate, ReviewItem, error_words
from naskahd.settle import Signature

# Step 1 (copy or encrypt, hash, fsync) runs on this many threads: it is mostly kernel
# work that drops the GIL, so a batch's stores overlap each other's fsync, and the next
# batch's stores overlap this one's register work (see Filer.begin).
STORE_THREADS = 2


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
        self.keys = ExemptKeys.of(config.state)
        self.store = Store(config, self.recipients, self.keys, clock)
        self.early = EarlyCopies(self.store, config.content_check)
        self.entry = Entry(config, sessions, self._seal_name, self.keys)
        self.release = Release(config)
        self.reconciler = Reconciler(config, sessions, self.recipients, self.keys, self.release)
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the store threads (after the batches begun are finished); remove early copies."""
        self.early.close()
        if self._pool is not None:
            self._pool.shutdown()
        self._pool = None

    def reconfigure(self, config: Config, recipients: Sequence[Any]) -> None:
        """A reloaded configuration with the same folders (reload.py, between batches):
        every part files with it from now on. Early copies made before are the caller's
        to drop (their rules or recipients may be the old ones)."""
        self.config = config
        for part in (self.store, self.entry, self.release, self.reconciler):
            part.config = config
        self.recipients = list(recipients)
        for part in (self.store, self.reconciler):
            part.recipients = self.recipients
        self.early.content_check = config.content_check

    def source_path(self, relpath: str | bytes) -> Path:
        return self.store.source_path(relpath)

    def _seal_name(self, raw_name: bytes) -> bytes:
        from naskahd import age

        return age.encrypt_bytes(raw_name, self.recipients)

    # -- early copies (early.py) ---------------------------------------------------------------
    def prestore(self, item: Ready) -> None:
        self.early.prestore(item)

    def early_check(self, relpath: str, signature: Signature | None) -> complete.Completeness | None:
        return self.early.check(relpath, signature)

    def discard_early(self, relpath: str) -> None:
        self.early.discard(relpath)

    def prune_early(self, signature_of: Callable[[str], Signature | None]) -> None:
        self.early.prune(signature_of)

    # -- the whole batch -----------------------------------------------------------------------
    def file_batch(self, items: Sequence[Ready]) -> list[Result]:
        """Steps 1 to 5 for ``items``; one Result per item."""
        return self.finish(self.begin(items))

    def begin(self, items: Sequence[Ready]) -> Batch:
        """Start step 1 for ``items`` on the store threads and return at once.

        Step 1 writes nothing but temp files in the archive: a crash before ``finish``
        leaves only those, and reconcile() removes them.
        """
        if self._pool is None:
            self._pool = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="naskahd-store")
        stores: list[tuple[Ready, Future[Stored | Result], bool]] = []  # (item, its step 1, early?)
        for item in items:
            early = self.early.take(item)
            if early is not None:
                stores.append((item, early, True))
            else:
                stores.append((item, self._pool.submit(self.store.store, item), False))
        # Queued behind the stores (first in, first out), so it cannot wait on work queued
        # after it; early copies run on their own threads, which never wait on this one.
        return Batch(tuple(items), self._pool.submit(self._sync_stores, stores))

    def _sync_stores(self, stores: list[tuple[Ready, Future[Stored | Result], bool]]) -> tuple[list[Result], list[Stored]]:
        """The end of step 1, on a store thread: fsync the batch's copies, all written first.

        Each copy's writeback was started when it was written, so by now most of the data
        is on its way and the fsyncs share the disk's work (journal commits, cache
        flushes): cheaper than one fsync right after each copy (docs/benchmarks-filing.md).
        Returns (results so far, copies to register).
        """
        results: list[Result] = []
        written: list[Stored] = []
        error: BaseException | None = None
        for item, future, early in stores:
            try:
                r = future.result()
                if early and isinstance(r, Stored) and r.staged.directory != self.store.target_dir(item.category, self.clock()):
                    # Copied in another month (or year) than now: numbered and filed by now.
                    r.staged.discard()
                    r = self.store.store(item)
                elif early and isinstance(r, Result):  # an early attempt decides nothing: try now
                    r = self.store.store(item)
            except BaseException as exc:  # a bug in the store: no row for anything in the batch
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
        stored: list[Stored] = []
        for s in written:
            r = self.store.synced(s)  # nothing left to do for an early copy: it was fsynced
            if isinstance(r, Result):
                results.append(r)
            else:
                stored.append(r)
        return results, stored

    def finish(self, batch: Batch, *, index_now: bool = True) -> list[Result]:
        """Wait for ``batch``'s step 1, then steps 2 to 5. ``index_now``: see Entry.register."""
        results, stored = batch.stored.result()
        if not stored:
            return results
        self.entry.index_now = index_now
        try:
            self.entry.register(stored)
        except Exception as exc:
            for s in stored:
                s.staged.discard()
            error = self.config.withheld(error_words(exc))
            self.log.error("register.commit_failed", error=error, files=len(stored))
            return results + [Result(s.item, Outcome.FAILED, _("register: {error}").format(error=error)) for s in stored]
        self._publish(stored)
        finished, duplicates = self._release(stored)
        self._mark(finished, duplicates)
        return results + [s.result for s in stored if s.result is not None]

    def _publish(self, stored: list[Stored]) -> None:
        """Step 3: final names (never overwriting); the folders fsynced."""
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

    def _release(self, stored: list[Stored]) -> tuple[list[tuple[Stored, DocumentState]], list[tuple[Stored, str]]]:
        """Step 4: remove the filed sources, move duplicates aside (release.py: each only
        once it is proved to be the very file taken)."""
        touched: list[str] = []
        finished: list[tuple[Stored, DocumentState]] = []
        duplicates: list[tuple[Stored, str]] = []
        for s in stored:
            if s.result is not None:
                continue
            if s.duplicate_of is not None:
                s.staged.discard()
                if self._is_unfinished(s):
                    # The very scan of a row that is not finished (its source could not be
                    # removed, or its rename failed): finish that row, never file it again.
                    outcome = self.reconciler.finish(s.duplicate_of)
                    if isinstance(outcome, str):
                        s.result = Result(s.item, Outcome.FAILED, outcome, s.duplicate_of.agenda)
                    else:
                        done = Outcome.FILED if outcome is DocumentState.FILED else Outcome.STUCK
                        s.result = Result(s.item, done, "", s.duplicate_of.agenda)
                    continue
                try:
                    moved = self.release.move(s.item.relpath, s.item.signature, self.config.duplicates_dir)
                except OSError as exc:
                    where = self.config.duplicates_dir
                    s.result = Result(s.item, Outcome.FAILED, reasons.encode("cannot_move_duplicate", error=reasons.os_error(exc, where)))
                    continue
                touched.append(s.item.relpath)
                if isinstance(moved, Released):
                    # Not the file whose copy was found to be a duplicate: it went, or a new
                    # file holds its name now (back in its place, filed on its own).
                    self._log_replaced(s, moved)
                    s.result = Result(s.item, Outcome.GONE)
                    continue
                duplicates.append((s, moved))
                s.result = Result(s.item, Outcome.DUPLICATE, moved, s.duplicate_of.agenda)
                continue
            assert s.doc is not None
            state = self._remove_source(self.source_path(s.item.relpath), s)
            touched.append(s.item.relpath)
            finished.append((s, state))
        for folder in self.release.folders(touched):
            with contextlib.suppress(OSError):
                durable.fsync_dir(folder)
        return finished, duplicates

    def _mark(self, finished: list[tuple[Stored, DocumentState]], duplicates: list[tuple[Stored, str]]) -> None:
        """Step 5: the rows say it is done; the duplicates are recorded."""
        now = self.clock()
        table = Document.__table__  # a Core UPDATE: no session objects to keep in step with it
        with self.sessions.begin() as session:
            for state in {state for _s, state in finished}:
                ids = [s.doc.id for s, st in finished if st is state and s.doc is not None]
                session.execute(update(table).where(table.c.id.in_(ids)).values(state=state, temp_name=None))
            for s, moved in duplicates:
                assert s.duplicate_of is not None
                exempt = s.item.category == EXEMPT
                session.add(Duplicate(
                    document_id=s.duplicate_of.id, source_relpath=naming.recorded_relpath(s.item.relpath, exempt=exempt),
                    moved_to="" if exempt else moved, detected_at=now,
                ))
            audit.duplicates_seen(session, ((s.duplicate_of, s.item.category) for s, _moved in duplicates))
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
                          **({} if exempt else {"sha256": s.sha256}))

    def _is_unfinished(self, s: Stored) -> bool:
        d = s.duplicate_of
        if d is None or s.duplicate_in_batch or d.state is DocumentState.FILED:
            return False
        exempt = s.item.category == EXEMPT
        return d.source_relpath == (self.keys.path(s.item.relpath) if exempt else naming.recorded_relpath(s.item.relpath, exempt=False))

    def _remove_source(self, source: Path, s: Stored, quiet: bool = False) -> DocumentState:
        outcome = self.release.remove(s.item.relpath, s.item.signature)
        if isinstance(outcome, OSError):
            if not quiet:
                self.log.warning("document.source_stuck", agenda=s.doc.agenda if s.doc else None,
                                 path=naming.shown_relpath(s.item.relpath, exempt=s.item.category == EXEMPT), error=outcome.strerror)
            return DocumentState.SOURCE_STUCK
        if isinstance(outcome, Released):
            self._log_replaced(s, outcome)
            return DocumentState.FILED  # the filed file is not there to remove; its copy is in the archive
        return outcome

    def _log_replaced(self, s: Stored, released: Released) -> None:
        if released.replaced:
            self.log.warning(
                "document.replaced", path=naming.shown_relpath(s.item.relpath, exempt=s.item.category == EXEMPT),
                agenda=s.doc.agenda if s.doc else None, moved_to_review=bool(released.moved_to_review),
            )

    def _log_filed(self, s: Stored, state: DocumentState) -> None:
        assert s.doc is not None
        fields: dict[str, Any] = dict(
            agenda=s.doc.agenda, category=s.doc.category, archive_path=s.doc.archive_path, detected_type=s.item.detected_type,
        )
        if s.doc.category != EXEMPT:
            # Exempt letters' names are withheld from logs too, and so are their size and
            # content key: nothing a holder of a candidate document could compare.
            fields.update(path=s.item.relpath, size=s.size, sha256=s.sha256)
        self.log.info("document.registered", **fields)
        if s.sealed is not None:
            self.log.info("document.encrypted", agenda=s.doc.agenda, ciphertext_sha256=s.sealed.ciphertext_sha256, recipients=len(s.sealed.recipients))

    def catch_up_index(self, limit: int) -> int:
        """Take up to ``limit`` documents not yet in the search index into it, in their own
        transaction (letters/index.py ``catch_up``); returns how many."""
        with self.sessions.begin() as session:
            return index.catch_up(session, limit=limit)

    # -- review ------------------------------------------------------------------------------
    def review_folder(self, *, exempt: bool) -> Path:
        """Where review items go: exempt ones apart (``tinjau/dikecualikan/``), names withheld,
        so that the only way back offered for them is into ``dikecualikan/``."""
        return self.config.review_dir / DROP_FOLDER[EXEMPT] if exempt else self.config.review_dir

    def to_review(self, relpath: str, reason: str, signature: Signature, *, exempt: bool = False) -> str | None:
        """Move the drop-folder entry examined (``signature``) to review: claimed first, so a
        file put under the same name meanwhile stays where it is. A rename: the entry is
        never opened, never followed. Returns the name used, or None if it is not there."""
        moved = self.release.move(relpath, signature, self.review_folder(exempt=exempt))
        if isinstance(moved, Released):
            return None
        with self.sessions.begin() as session:
            session.add(ReviewItem(
                name_sha256=self.keys.review_name(moved) if exempt else naming.name_key(moved),
                source_relpath=naming.recorded_relpath(relpath, exempt=exempt),
                reason=reason, moved_at=self.clock(),
            ))
            audit.record(session, "document.review", exempt=exempt, reason=reasons.code_of(reason))
        folder = self.review_folder(exempt=exempt).relative_to(self.config.drop).as_posix()
        self.log.warning("document.review", path=naming.shown_relpath(relpath, exempt=exempt),
                         moved_to=f"{folder}/{naming.WITHHELD if exempt else moved}", reason=reasons.render(reason))
        return moved

    # -- start-up reconciliation (reconcile.py) -------------------------------------------------
    def reconcile(self) -> list[str]:
        return self.reconciler.reconcile()
