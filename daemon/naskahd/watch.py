"""Detect: the watchdog observer, full scans of the drop folder, and the polling choice.

Events only say "look at this path"; the settle stage decides whether the file is ready.
Watchers miss events (queue overflow, network filesystems), so the drop folder is also
scanned in full at start-up, after an inotify overflow, and every ``rescan_seconds``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import stat
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent, DirMovedEvent, FileClosedEvent, FileCreatedEvent, FileMovedEvent,
    FileSystemEvent, FileSystemEventHandler, FileSystemMovedEvent,
)
from watchdog.observers.api import BaseObserver

from naskahd.classify import is_ignored
from naskahd.config import INTERNAL_NAMES, Config

# watchdog holds each IN_MOVED_FROM for this long, to pair it with its IN_MOVED_TO, and
# every later event waits behind one not paired yet; each pairing also scans the whole
# queue of waiting events. A burst of scans renamed into place (``name.part`` -> ``name``)
# then waits up to 0.5 s and costs CPU quadratic in the burst (2,000 renames: 0.86 s of
# CPU, against 0.2 s without the wait; docs/benchmarks-filing.md). naskahd needs no
# pairing: a move only says "look at the new name" (an unpaired IN_MOVED_TO is reported
# as created, which it is to naskahd), so events are never held.
MOVE_PAIRING_SECONDS = 0.0

# Filesystems where the kernel never sees the writes (they happen on another host), so
# inotify stays silent: NFS, SMB/CIFS, and FUSE in general (sshfs, ...).
REMOTE_FSTYPES = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre")


@dataclass(frozen=True)
class Touch:
    path: str  # absolute


@dataclass(frozen=True)
class Scan:
    path: str  # absolute directory to scan recursively
    reason: str


Event = Touch | Scan


def mount_fstype(path: Path, mountinfo: str | None = None) -> str:
    """The filesystem type of the mount holding ``path`` (longest mount point prefix)."""
    if mountinfo is None:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            mountinfo = f.read()
    target = os.path.realpath(path)
    best, fstype = "", "unknown"
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mount_point = fields[4].replace("\\040", " ")
        if (target == mount_point or target.startswith(mount_point.rstrip("/") + "/")) and len(mount_point) >= len(best):
            best, fstype = mount_point, right.split()[0]
    return fstype


def choose_mode(configured: str, fstype: str) -> str:
    """``auto`` polls where inotify cannot see remote writes; otherwise inotify."""
    if configured != "auto":
        return configured
    if fstype in REMOTE_FSTYPES or fstype.startswith("fuse"):
        return "polling"
    return "inotify"


def early_copies_safe(mode: str, fstype: str) -> bool:
    """May files be copied early here (settle.Settler.early_fraction)? Not where the signature
    cannot vouch for the bytes: a polled folder, or a network filesystem whatever the mode
    (cached attributes, another host's clock)."""
    return mode != "polling" and fstype not in REMOTE_FSTYPES and fstype != "fuse.sshfs"


def relative(config: Config, path: str) -> str | None:
    """The drop-relative path, or None for paths naskahd must not take (its own folders, ignored names)."""
    drop = str(config.drop)
    inside = path.startswith(drop) and path[len(drop) : len(drop) + 1] == "/"
    if inside and path[len(drop) + 1 :].split("/", 1)[0] in INTERNAL_NAMES:
        return None  # naskahd's own folders: the holding folder sees two events per file filed
    if inside and "/." not in path and "//" not in path and not path.endswith("/"):
        rel = path[len(drop) + 1 :]  # the common case, without relpath's normalising (it runs per event)
    else:
        try:
            rel = os.path.relpath(path, config.drop)
        except ValueError:
            return None
    if rel == "." or rel.startswith("../") or rel == "..":
        return None
    top = rel.split("/", 1)[0]
    if top in INTERNAL_NAMES or is_ignored(rel, config.ignore):
        return None
    return rel


def scan(config: Config, root: str | None = None, unreadable: dict[str, OSError] | None = None) -> Iterator[tuple[str, os.stat_result]]:
    """Every non-directory entry below ``root`` (default: the drop folder), never following links.

    Yields (relpath, lstat) for regular files and for the odd entries too (links, FIFOs,
    ...), which the pipeline reports; directories are descended into. A folder that cannot
    be listed or an entry that cannot be looked at (no permission, a path longer than the
    system allows) is skipped and, if ``unreadable`` is given, put there by its
    drop-relative path: what it holds is never seen until it can be, so a person must be told.
    """
    stack = [root or str(config.drop)]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            continue  # vanished; nothing to tell
        except OSError as exc:
            rel = relative(config, directory)
            if unreadable is not None and rel is not None:
                unreadable[rel] = exc
            continue  # the next scan tries again
        for entry in entries:
            rel = relative(config, entry.path)
            if rel is None:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:  # e.g. a path longer than PATH_MAX below a deep folder
                if unreadable is not None:
                    unreadable[rel] = exc
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
            else:
                yield rel, st


class _Handler(FileSystemEventHandler):
    def __init__(self, events: queue.SimpleQueue[Event], drop: str = "") -> None:
        self.events = events
        # naskahd's own folders (relative() refuses them): their events are not queued at
        # all. Each file filed is claimed by a rename into the holding folder, two events.
        self.internal = tuple(f"{drop}/{name}/" for name in sorted(INTERNAL_NAMES)) if drop else ()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write", "deleted"):
            return
        path = os.fsdecode(event.dest_path if isinstance(event, FileSystemMovedEvent) else event.src_path)
        if self.internal and path.startswith(self.internal):
            return
        if isinstance(event, (DirCreatedEvent, DirMovedEvent)):
            # inotify reports only the folder itself; whatever it holds must be scanned.
            self.events.put(Scan(path, "folder appeared"))
        elif not event.is_directory:
            self.events.put(Touch(path))


OVERFLOW = "inotify queue overflow"  # the reason of the full scan that follows one


class Overflows:
    """The inotify queue overflows seen since the start (by _OverflowSpotter, on watchdog's
    thread) and the full rescans of the drop folder they led to (service.Daemon), for
    `naskahd status`: events were lost while ``rescanning``; the rescan finds them."""

    SAME = 1.0  # watchdog logs one overflow once per logger: records this close are one overflow

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0  # overflows seen
        self.rescanned = 0  # of them, covered by a finished rescan
        self.last_at: str | None = None
        self.rescanned_at: str | None = None
        self.entries: int | None = None  # what the last rescan found
        self._mono = float("-inf")
        self._loggers: set[str] = set()

    def seen(self, logger: str) -> bool:
        """One overflow record from ``logger``; True if it is a new overflow (a rescan is due)."""
        now = time.monotonic()
        with self._lock:
            if now - self._mono < self.SAME and logger not in self._loggers:
                self._loggers.add(logger)  # the same overflow in watchdog's other words
                return False
            self.count += 1
            self._mono, self._loggers = now, {logger}
            self.last_at = _iso_now()
            return True

    def rescan_started(self) -> int:
        """The rescan begins: it covers the overflows seen so far (returned)."""
        with self._lock:
            return self.count

    def rescan_done(self, covered: int, entries: int) -> None:
        with self._lock:
            self.rescanned = max(self.rescanned, covered)
            self.rescanned_at, self.entries = _iso_now(), entries

    def snapshot(self) -> dict[str, Any]:
        """For the heartbeat (`status --json`'s ``inotify_overflows``)."""
        with self._lock:
            return {"count": self.count, "last_at": self.last_at, "rescanning": self.rescanned < self.count,
                    "rescanned_at": self.rescanned_at, "rescan_entries": self.entries}


def _iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class _OverflowSpotter(logging.Handler):
    """watchdog rebuilds its watches after an inotify queue overflow but tells its user
    only through its log; turn that into a full scan, since events were lost, and count it
    (Overflows) for `status`."""

    def __init__(self, events: queue.SimpleQueue[Event], drop: str, overflows: Overflows) -> None:
        super().__init__(logging.WARNING)
        self.events, self.drop, self.overflows = events, drop, overflows

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower() and self.overflows.seen(record.name):
            self.events.put(Scan(self.drop, OVERFLOW))


def _no_move_pairing_wait() -> None:
    """Set watchdog's move-pairing wait (see MOVE_PAIRING_SECONDS), where it has one."""
    try:
        from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
    except ImportError:  # another watchdog: its own pairing, left as it is
        return
    if isinstance(getattr(InotifyMoveEventGrouper, "delay", None), (int, float)):
        InotifyMoveEventGrouper.delay = MOVE_PAIRING_SECONDS


class Watcher:
    """Owns the watchdog observer; puts Touch/Scan events on ``events``."""

    def __init__(self, config: Config, events: queue.SimpleQueue[Event], overflows: Overflows | None = None) -> None:
        self.config, self.events = config, events
        self.overflows = overflows if overflows is not None else Overflows()  # the daemon's, across watchers
        self.fstype = mount_fstype(config.drop)
        self.mode = choose_mode(config.watch_mode, self.fstype)
        self.observer: BaseObserver | None = None
        self._spotter = _OverflowSpotter(events, str(config.drop), self.overflows)

    def start(self) -> None:
        if self.mode == "polling":
            from watchdog.observers.polling import PollingObserver

            self.observer = PollingObserver(timeout=1.0)
        else:
            from watchdog.observers.inotify import InotifyObserver

            _no_move_pairing_wait()
            # watchdog 7 warns (on stderr, several lines) when a folder made and filled at once
            # (the holding folder's subfolders, filing/release.py) gets its watch added twice:
            # the same callback replaces itself, nothing is lost. Kept out of the log.
            warnings.filterwarnings("ignore", message="Callback with id .* already exists for watch", category=RuntimeWarning)
            self.observer = InotifyObserver()
            logging.getLogger("watchdog.observers.inotify_c").addHandler(self._spotter)
            logging.getLogger("watchdog.observers.inotify").addHandler(self._spotter)
        # Only the events that say "a new name to look at" or "a writer is done". Writes
        # themselves (IN_MODIFY, one per write call: a flood from a slow SMB writer) are
        # not needed: the settle stage re-stats every candidate before it is taken. Nor
        # are open/close-nowrite/delete (the daemon's own reads and removals).
        wanted = [FileCreatedEvent, FileMovedEvent, FileClosedEvent, DirCreatedEvent, DirMovedEvent]
        self.observer.schedule(_Handler(self.events, str(self.config.drop)), str(self.config.drop), recursive=True,
                              event_filter=wanted)
        self.observer.start()

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=10)
        for name in ("watchdog.observers.inotify_c", "watchdog.observers.inotify"):
            logging.getLogger(name).removeHandler(self._spotter)
