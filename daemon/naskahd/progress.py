"""Progress of a long catch-up (many files waiting after a restart), for the log.

Every ``EVERY`` seconds while at least ``BACKLOG`` files wait, one ``catchup.progress`` line
says how many were taken so far and how many still wait; ``catchup.done`` when the backlog
is gone. Ordinary traffic (a few scans at a time) logs nothing here.
"""

from __future__ import annotations

from typing import Any

EVERY = 5.0  # seconds between progress lines
BACKLOG = 200  # files waiting before progress is worth reporting


class Progress:
    def __init__(self, log: Any, every: float = EVERY, backlog: int = BACKLOG) -> None:
        self.log, self.every, self.backlog = log, every, backlog
        self.active = False
        self.done = 0
        self._next = 0.0
        self._started = 0.0

    def taken(self, n: int = 1) -> None:
        self.done += n

    def tick(self, pending: int, now: float) -> None:
        if not self.active:
            if pending < self.backlog:
                self.done = 0
                return
            self.active, self.done, self._started, self._next = True, 0, now, now + self.every
            self.log.info("catchup.started", pending=pending)
            return
        if pending == 0:
            self.log.info("catchup.done", taken=self.done, seconds=round(now - self._started, 1))
            self.active, self.done = False, 0
            return
        if now >= self._next:
            rate = self.done / max(now - self._started, 1e-9)
            self.log.info("catchup.progress", taken=self.done, pending=pending, per_second=round(rate, 1),
                          eta_seconds=round(pending / rate) if rate > 0 else None)
            self._next = now + self.every
