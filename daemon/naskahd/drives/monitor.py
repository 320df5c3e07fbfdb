"""The daemon's drives thread: udev events and the mount table; a sync when a registered
drive is mounted.

One event source beside the drop-folder watcher, not a polling loop. A pyudev monitor
(source ``udev``: events after udev has probed the device, so ``ID_FS_UUID`` is known)
filtered to block devices is started *before* the devices already present are
enumerated, so a drive attached during start-up is not missed. A device whose UUID
belongs to a registered drive is then waited for in ``/proc/self/mountinfo`` (POLLPRI on
every mount-table change) for ``MOUNT_WAIT`` seconds; once it is mounted it is synced
(drives/sync.py), on this thread with its own register connection, so filing never
waits for it. A registered drive already mounted at start-up is synced too.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Any

from sqlalchemy import select as sql_select

from naskahd.config import Config
from naskahd.i18n import _
from naskahd.drives import mounts, sync
from naskahd.log import get_logger
from naskahd.register import Drive, open_register

MOUNT_WAIT = 120.0  # seconds a registered drive that appeared may take to be mounted
_STATE = {"done": "idle", "refused": "refused", "busy": "syncing"}


class DriveWatcher:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.log = get_logger("drives")
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._lock = threading.Lock()
        self._states: dict[str, dict[str, Any]] = {}
        self._awaiting: dict[str, float] = {}  # device node -> deadline (monotonic)
        self._seen_mounts: set[tuple[int, bool]] = set()  # (mount id, writable)
        self._thread = threading.Thread(target=self._run, name="naskahd-drives", daemon=True)

    # -- for the main loop ---------------------------------------------------------------------
    def start(self) -> None:
        try:
            import pyudev

            self._context = pyudev.Context()
            self._monitor = pyudev.Monitor.from_netlink(self._context, source="udev")
            self._monitor.filter_by("block")
            self._monitor.start()  # before enumerating: nothing attached meanwhile is missed
        except Exception as exc:  # no netlink (a container without it): filing goes on
            self.log.error("drives.failed", error=str(exc))
            self._set("*", "error", str(exc))
            return
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per drive name: state (idle, syncing, refused, error) and problem, for the heartbeat."""
        with self._lock:
            return {k: dict(v) for k, v in self._states.items()}

    # -- the thread ----------------------------------------------------------------------------
    def _set(self, name: str, state: str, problem: str | None = None, message: str | None = None) -> None:
        with self._lock:
            self._states[name] = {"state": state, "problem": problem, "message": message}

    def _run(self) -> None:
        try:
            self.sessions = open_register(self.config.database_url)
            self._startup()
            self._loop()
        except Exception as exc:  # never take the daemon down; status shows it
            self.log.error("drives.failed", error=str(exc))
            with self._lock:
                self._states["*"] = {"state": "error", "problem": str(exc), "message": None}

    def _registered(self) -> dict[str, str]:
        """UUID (lower case) → drive name."""
        with self.sessions() as s:
            return {d.uuid.lower(): d.name for d in s.scalars(sql_select(Drive))}

    def _startup(self) -> None:
        registered = self._registered()
        for dev in self._context.list_devices(subsystem="block"):
            uuid = (dev.properties.get("ID_FS_UUID") or "").lower()
            if uuid in registered and dev.device_node:
                self._awaiting[dev.device_node] = time.monotonic() + MOUNT_WAIT
        self.log.info("drives.watching", registered=len(registered), present=len(self._awaiting))
        self._check_mounts()

    def _loop(self) -> None:
        with open(mounts.MOUNTINFO, "rb") as mountinfo:
            poller = select.poll()
            poller.register(self._monitor.fileno(), select.POLLIN)
            poller.register(mountinfo, select.POLLPRI | select.POLLERR)
            poller.register(self._wake_r, select.POLLIN)
            mountinfo.read()
            while not self._stop.is_set():
                for fd, _ev in poller.poll(5000):
                    if fd == self._monitor.fileno():
                        self._udev_events()
                    elif fd == mountinfo.fileno():
                        mountinfo.seek(0)
                        mountinfo.read()  # re-arms the notification
                if self._stop.is_set():
                    return
                self._check_mounts()

    def _udev_events(self) -> None:
        registered = self._registered()
        while (dev := self._monitor.poll(timeout=0)) is not None:
            uuid = (dev.properties.get("ID_FS_UUID") or "").lower()
            node = dev.device_node
            if dev.action == "remove" and node:
                self._awaiting.pop(node, None)
                continue
            if dev.action in ("add", "change") and node and uuid in registered:
                self.log.info("drive.attached", drive=registered[uuid], device=node)
                self._awaiting[node] = time.monotonic() + MOUNT_WAIT

    def _check_mounts(self) -> None:
        """Sync each registered drive that got mounted: awaited devices, and any new mount
        of a registered drive's filesystem (mounted by hand, after the wait); a drive mounted
        read-only and then remounted writable counts as new (the sync it refused can run now)."""
        now = time.monotonic()
        table = list(mounts.mounted_block_devices())
        current = {_seen(m) for m, _n in table}
        new = [(m, n) for m, n in table if _seen(m) not in self._seen_mounts]
        self._seen_mounts = current
        registered = self._registered() if new else {}
        todo: list[str] = []
        for _mount, node in new:
            uuid = (mounts.identity(node).uuid or "").lower()
            if uuid in registered:
                self._awaiting.pop(node, None)
                todo.append(registered[uuid])
        for node, deadline in list(self._awaiting.items()):
            if deadline < now:
                self._awaiting.pop(node)
                self.log.warning("drive.not_mounted", device=node, waited=MOUNT_WAIT)
        for name in dict.fromkeys(todo):
            self._sync(name)

    def _sync(self, name: str) -> None:
        try:
            report = sync.sync_drive(self.config, self.sessions, name, wait=False, cancelled=self._stop.is_set,
                                     on_state=lambda st: self._set(name, st))
        except Exception as exc:  # e.g. the register stayed locked: this drive waits, the others and filing go on
            self.log.error("drive.sync_failed", drive=name, error=str(exc))
            self._set(name, "error", _("drive {name}: the sync failed: {error}; unplug it and plug it in again").format(name=name, error=exc))
            return
        if report.state == "busy":  # `naskahd sync` has it; it reports itself
            return
        if report.state == "done":
            problem = "; ".join(report.failed[:3]) or None
            self._set(name, "idle" if not problem else "error", problem, report.message)
        elif report.state == "refused":
            self._set(name, "refused", report.message)
        else:
            self._set(name, "error", report.message)
        self.log.info("drive.report", drive=name, state=report.state, message=report.message)


def _seen(m: mounts.Mount) -> tuple[int, bool]:
    return m.mount_id, "ro" not in m.options.split(",")
