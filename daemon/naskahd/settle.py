"""Is this file ready to take? Stability decisions, pure: no disk, no clock of its own.

A file is taken only when its signature (size, mtime, inode, ctime) has not changed for
``settle_seconds``, however it was found (event, start-up scan, periodic scan). There is
no retry limit: a file that keeps changing is watched until it stops. After it is
stable, the content check (``complete.py``) must also pass; a scan that starts like a
known format but stays incomplete is sent to review only after it has been quiet for
``incomplete_after_seconds``: a file that is still changing is never given up on.

A quarter of the way through its quiet time a candidate is also offered for an early copy
(``early``): filing may copy it into the archive ahead, and uses that copy only if the
file is still the very same (same signature) when it is due. Nothing is taken early:
the copy is a temp file until the file is due, stable and registered. Each candidate is
offered once: a file that changes after its early copy is being written slowly (a
scanner writing page by page), and copying it again at every pause would copy a growing
file over and over; it is copied when it is due instead.
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

# A candidate quiet for this fraction of settle_seconds is offered for an early copy: early
# enough that one thread copies a burst before it is due, late enough that a writer's
# short pause seldom costs a copy (docs/benchmarks-filing.md has the A/B series).
EARLY_FRACTION = 0.25


@dataclass(frozen=True)
class Signature:
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> Signature:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class Verdict(Enum):
    WAIT = "wait"  # not stable yet; look again at the candidate's new due time
    STABLE = "stable"  # unchanged for settle_seconds: run the content check, then take it
    GIVE_UP = "give_up"  # quiet, yet still incomplete after incomplete_after_seconds: review


@dataclass
class Candidate:
    relpath: str
    signature: Signature | None = None
    changed_at: float = 0.0  # when the signature was last seen to change (or an event came)
    due: float = 0.0
    failures: int = 0  # consecutive failed attempts to take it (I/O errors), for backoff
    held: bool = False  # parked until the next scan or event (e.g. exempt without recipient)
    early_at: float | None = None  # when it is offered for an early copy (None: not, or not again)
    early_offered: bool = False  # offered once already: never again (see the module's doc)
    incomplete: str | None = None  # the content check's last reason, while incomplete
    extra: dict[str, object] = field(default_factory=dict)


class Settler:
    """Candidates in the drop folder and when each should be looked at next."""

    def __init__(self, settle_seconds: float, incomplete_after_seconds: float) -> None:
        self.settle = settle_seconds
        self.incomplete_after = incomplete_after_seconds
        # None: no early copies (a polled network filesystem: its cached attributes and
        # another host's clock cannot vouch that the copy is still the file).
        self.early_fraction: float | None = EARLY_FRACTION
        self.candidates: dict[str, Candidate] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._early_heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self.candidates)

    def _schedule(self, cand: Candidate, due: float) -> None:
        cand.due = due
        heapq.heappush(self._heap, (due, next(self._seq), cand.relpath))

    def _new_signature(self, cand: Candidate, signature: Signature, now: float) -> None:
        """``signature`` seen first, or changed, at ``now``: a whole new quiet time."""
        cand.signature, cand.changed_at, cand.held, cand.incomplete = signature, now, False, None
        self._schedule(cand, now + self.settle)
        if not cand.early_offered and self.early_fraction is not None:
            cand.early_at = now + self.settle * self.early_fraction
            heapq.heappush(self._early_heap, (cand.early_at, next(self._seq), cand.relpath))

    def touch(self, relpath: str, signature: Signature, now: float) -> None:
        """An event or a scan saw ``relpath`` with ``signature``.

        A new file, or a changed signature, (re)starts the quiet time; an unchanged one
        keeps its clock (the event was for a write already seen). A held candidate gets
        another look now.
        """
        cand = self.candidates.get(relpath)
        if cand is None:
            cand = self.candidates[relpath] = Candidate(relpath)
            self._new_signature(cand, signature, now)
        elif signature != cand.signature:
            self._new_signature(cand, signature, now)
        elif cand.held:
            cand.held = False
            self._schedule(cand, now)

    def restart(self, cand: Candidate, now: float) -> None:
        """The file changed under us while it was being taken: a whole new quiet time."""
        cand.changed_at, cand.signature, cand.incomplete, cand.early_at = now, None, None, None
        self._schedule(cand, now + self.settle)

    def postpone(self, cand: Candidate, now: float) -> None:
        """Look again after another settle window, its quiet time unchanged (it is busy)."""
        self._schedule(cand, now + self.settle)

    def forget(self, relpath: str) -> None:
        self.candidates.pop(relpath, None)  # its heap entries are skipped when they surface

    def due(self, now: float, limit: int | None = None) -> list[Candidate]:
        """Candidates whose time to be looked at has come, earliest first."""
        out: list[Candidate] = []
        while self._heap and self._heap[0][0] <= now and (limit is None or len(out) < limit):
            due, _, relpath = heapq.heappop(self._heap)
            cand = self.candidates.get(relpath)
            if cand is not None and cand.due == due and not cand.held:
                out.append(cand)
        return out

    def next_due(self) -> float | None:
        return self._first_live(self._heap, lambda cand, at: cand.due == at)

    def _first_live(
        self, heap: list[tuple[float, int, str]], current: Callable[[Candidate, float], bool]
    ) -> float | None:
        """The time of ``heap``'s first entry still ``current`` for a candidate not held;
        stale entries (forgotten, rescheduled) are dropped on the way."""
        while heap:
            at, _, relpath = heap[0]
            cand = self.candidates.get(relpath)
            if cand is not None and current(cand, at) and not cand.held:
                return at
            heapq.heappop(heap)
        return None

    def early(self, now: float) -> list[Candidate]:
        """Candidates quiet for ``EARLY_FRACTION`` of their settle time, each once: their
        copy may be made ahead, to be used only if they are unchanged when due."""
        out: list[Candidate] = []
        while self._early_heap and self._early_heap[0][0] <= now:
            at, _, relpath = heapq.heappop(self._early_heap)
            cand = self.candidates.get(relpath)
            if cand is not None and cand.early_at == at and not cand.held and cand.signature is not None:
                cand.early_at, cand.early_offered = None, True
                if cand.due > now:  # due already (a long burst): it is being copied anyway
                    out.append(cand)
        return out

    def next_early(self) -> float | None:
        return self._first_live(self._early_heap, lambda cand, at: cand.early_at == at)

    def observe(self, cand: Candidate, signature: Signature, now: float) -> Verdict:
        """Compare a fresh stat with the last one. Stable means unchanged for settle_seconds."""
        if signature != cand.signature:
            self._new_signature(cand, signature, now)
            return Verdict.WAIT
        quiet_until = cand.changed_at + self.settle
        if now < quiet_until:
            self._schedule(cand, quiet_until)
            return Verdict.WAIT
        return Verdict.STABLE

    def incomplete(self, cand: Candidate, reason: str, now: float) -> Verdict:
        """The content check said the stable file is not complete: keep waiting, or give up."""
        cand.incomplete = reason
        if now - cand.changed_at >= self.incomplete_after:
            return Verdict.GIVE_UP
        # Look again after another settle window (a change restarts the quiet time).
        self._schedule(cand, min(now + self.settle, cand.changed_at + self.incomplete_after))
        return Verdict.WAIT

    def retry_later(self, cand: Candidate, now: float) -> float:
        """An attempt failed (unreadable, disk full, ...): back off, never forget. Returns the delay."""
        cand.failures += 1
        delay = min(300.0, self.settle * (2 ** min(cand.failures, 10)))
        self._schedule(cand, now + delay)
        return delay

    def hold(self, cand: Candidate) -> None:
        """Park the candidate until the next scan or event touches it."""
        cand.held = True
