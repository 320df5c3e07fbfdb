"""Step 1 ahead of time: copy a quiet file while it sits out the rest of its settle time.

A file is taken only when it is due (quiet for ``settle_seconds``), but a quarter of the
way through that quiet time (``settle.EARLY_FRACTION``) the daemon hands it here; the
early threads make step 1's copy (and the content check of the bytes copied) then, while
the CPUs would otherwise idle through the settle wait. ``Filer.begin`` uses the copy only
for the very file copied (same signature and category); otherwise it is thrown away.
Nothing is registered or removed early: until step 2 an early copy is a temp file like
any other, and a crash leaves it as an orphan that reconcile removes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from naskahd import complete
from naskahd.filing.items import Ready, Result, Stored
from naskahd.filing.store import Store
from naskahd.settle import Signature

# Early copies run on their own threads, so a due batch never queues behind them; at most
# EARLY_MAX at a time (each is a temp file in the archive until it is used). Two keep
# ahead of a fast burst with the content check on (docs/benchmarks-filing.md).
EARLY_THREADS = 2
EARLY_MAX = 2048
# An early copy is made only if any later write must change the file's ctime, which the
# kernel sets on every change to the current time, in the filesystem's granularity: the
# ctime must be older than the copy's start by more than a clock tick. A filesystem whose
# times are whole seconds (vfat, ext4 with 128-byte inodes, some NAS) gets no early copies:
# a rewrite within the same second, at the same size, would not show in the signature, and
# the source, holding newer bytes than the copy, would be removed.
EARLY_CTIME_MARGIN_NS = 50_000_000


def shows_later_writes(st: os.stat_result, now_ns: int | None = None) -> bool:
    """Would any write from ``now_ns`` on change this file's ctime? (EARLY_CTIME_MARGIN_NS)"""
    now_ns = time.time_ns() if now_ns is None else now_ns
    return st.st_ctime_ns % 1_000_000_000 != 0 and st.st_ctime_ns <= now_ns - EARLY_CTIME_MARGIN_NS


def discard_copy(future: Future[Stored | Result]) -> None:
    """Remove the temp file of a finished store that will not be used."""
    if not future.cancelled() and future.exception() is None:
        r = future.result()
        if isinstance(r, Stored):
            r.staged.discard()


@dataclass(frozen=True)
class Early:
    """Step 1 done ahead for ``item``, before the file was due."""

    item: Ready
    stored: Future[Stored | Result]


class EarlyCopies:
    """The early copies outstanding, by drop-relative path; used from the daemon's thread."""

    def __init__(self, store: Store, content_check: bool) -> None:
        self.store = store
        self.content_check = content_check
        self._pool: ThreadPoolExecutor | None = None
        self._early: dict[str, Early] = {}

    def __contains__(self, relpath: str) -> bool:
        return relpath in self._early

    def __len__(self) -> int:
        return len(self._early)

    def prestore(self, item: Ready) -> None:
        """Start step 1 for ``item`` now, before it is due (settle.Settler.early)."""
        self.discard(item.relpath)
        if len(self._early) >= EARLY_MAX:
            return  # copied when due, as without early copies
        if self._pool is None:
            self._pool = ThreadPoolExecutor(EARLY_THREADS, thread_name_prefix="naskahd-early")
        self._early[item.relpath] = Early(item, self._pool.submit(self._store_synced, item))

    def _store_synced(self, item: Ready) -> Stored | Result:
        r = self.store.store(item, check=self.content_check, guard=shows_later_writes)
        return self.store.synced(r) if isinstance(r, Stored) else r

    def take(self, item: Ready) -> Future[Stored | Result] | None:
        """``item``'s early copy for use now, if it was made of this very file and has
        started; otherwise None (and any early copy of that path is thrown away)."""
        early = self._early.pop(item.relpath, None)
        if early is None:
            return None
        if (early.item.signature, early.item.category) == (item.signature, item.category):
            # An early copy not started yet (the early threads are busy with large files)
            # is copied now on the store threads instead.
            if not early.stored.cancel():
                return early.stored
            return None
        self._discard(early)
        return None

    def check(self, relpath: str, signature: Signature | None) -> complete.Completeness | None:
        """The content check's verdict made by ``relpath``'s early copy, if that copy is done
        and was made of the file with ``signature``; else None.

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
        return r.completeness if isinstance(r, Stored) else None

    def discard(self, relpath: str) -> None:
        """Throw away ``relpath``'s early copy, if any (the file changed, went, or was reviewed)."""
        early = self._early.pop(relpath, None)
        if early is not None:
            self._discard(early)

    def prune(self, signature_of: Callable[[str], Signature | None]) -> None:
        """Throw away the early copies of files whose signature is no longer the copied one."""
        for relpath, early in list(self._early.items()):
            if signature_of(relpath) != early.item.signature:
                self.discard(relpath)

    @staticmethod
    def _discard(early: Early) -> None:
        if not early.stored.cancel():  # running or done: its temp file goes when it is done
            early.stored.add_done_callback(discard_copy)

    def close(self) -> None:
        for relpath in list(self._early):
            self.discard(relpath)
        if self._pool is not None:
            self._pool.shutdown()  # the early copies not started were cancelled just above
        self._pool = None
