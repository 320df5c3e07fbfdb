"""The daemon's heartbeat for `naskahd status` (state.write_heartbeat) and systemd
(WATCHDOG=1, STATUS=), with the state disk's trouble first: a full disk, a batch stopped
half-way (service.Daemon)."""

from __future__ import annotations

import datetime as dt
import os
import time

from naskahd import reasons
from naskahd.i18n import _
from naskahd.register import space_problem
from naskahd.state import write_heartbeat

HEARTBEAT_SECONDS = 0.5  # at most this often; written only when something changed (or every 30 s)


class Heartbeat:
    """Mixin of service.Daemon: the heartbeat and the state disk's problems."""

    def _heartbeat(self) -> None:
        now = time.monotonic()
        self.notifier.tick(now)  # only this loop pings: if it hangs, systemd restarts the service
        if now < self._heartbeat_due:
            return
        self._heartbeat_due = now + HEARTBEAT_SECONDS
        # Early copies of files that changed since (or went without an event) are thrown away.
        self.filer.prune_early(lambda rel: c.signature if (c := self.settler.candidates.get(rel)) else None)
        problems = self._state_problems() + list(self.problems) + [self.unlisted[r] for r in sorted(self.unlisted)[:20]]
        # Stored as codes (naskahd.reasons): `status` renders them in its reader's language.
        problems += [
            reasons.encode("cannot_file", path=self._shown(p), error=reasons.nested(e))
            for p, e in sorted(self.failing.items())[:20]
        ]
        held = sorted(self.held)
        if held:
            problems.append(reasons.encode("exempt_waiting", n=len(held), why=reasons.nested(next(iter(self.held.values())))))
        waiting = [
            {"path": self._shown(c.relpath), "reason": c.incomplete}
            for c in list(self.settler.candidates.values())[:200] if c.incomplete
        ]
        problems = [self.config.withheld(p) for p in problems]  # error texts carry paths
        data = {
            "running": True, "pid": os.getpid(), "since": self.since.isoformat(timespec="seconds"),
            "watch_mode": self.watcher.mode, "filesystem": self.watcher.fstype,
            "pending": len(self.settler), "waiting": waiting, "problems": problems,
            "drives": self.drives.snapshot(),
            "reload": self.last_reload,
            "inotify_overflows": self.overflows.snapshot(),  # watch.Overflows
        }
        self.notifier.status(self.summary.line(self))
        if data != self._last_heartbeat or now >= self._heartbeat_written + 30:
            try:
                write_heartbeat(self.config.state, {**data, "heartbeat": iso_now()})
            except OSError as exc:  # not even in place (state.write_heartbeat): keep running, retry
                if self._heartbeat_error is None:
                    self.log.error("state.heartbeat_failed", error=exc.strerror, folder=str(self.config.state))
                self._heartbeat_error = exc.strerror
                return
            self._heartbeat_error = None
            self._last_heartbeat, self._heartbeat_written = data, now

    def _state_problems(self) -> list[str]:
        """The state disk's trouble, first (state.write_heartbeat keeps the first problems
        when a heartbeat rewritten in place must be cut)."""
        problems: list[str] = []
        full = space_problem(self.config.database_url)
        if (full is not None) != self._disk_full:
            self._disk_full = full is not None
            if full is not None:
                self.log.error("state.disk_full", folder=str(self.config.state), problem=full)
            else:
                self.log.info("state.disk_space_back", folder=str(self.config.state))
        if full is not None:
            problems.append(_(
                "naskahd keeps running, but the disk of its state folder {folder} is full: scans that "
                "cannot be registered wait in the drop folder; free space on that disk"
            ).format(folder=self.config.state))
        gone = self.archive_watch.problem() if hasattr(self, "archive_watch") else None  # rootwatch.py
        if gone is not None:
            problems.append(gone)
        if hasattr(self, "drop_watch") and self.drop_watch.problem is not None:
            problems.append(self.drop_watch.problem)
        if self.half_done is not None:
            problems.append(_(
                "filing of {n} scan(s) stopped half-way ({error}): naskahd finishes them as soon as the "
                "register can be written again, or at its next start; do not drop them again"
            ).format(n=self.half_done[0], error=self.half_done[1]))
        return problems



def iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
