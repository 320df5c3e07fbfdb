"""The mount table (``/proc/self/mountinfo``) and the filesystem identity of block devices.

The mount table is pollable: ``poll`` reports POLLPRI (with POLLERR) on every change, so a
mount is waited for without a polling loop. A device's filesystem UUID, label, type,
model and serial come from udev's database (pyudev); where udev has not seen the device
(no udevd), from ``blkid -p`` (the superblock itself).
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = "/proc/self/mountinfo"


@dataclass(frozen=True)
class Mount:
    mount_id: int
    devnum: tuple[int, int]  # major, minor (FUSE: the anonymous device of the mount)
    root: str
    mountpoint: str
    fstype: str
    source: str  # the device given to mount, e.g. /dev/loop3 (also for fuseblk)
    options: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        left, _sep, right = line.partition(" - ")
        f, r = left.split(), right.split()
        if len(f) < 6 or len(r) < 2:
            continue
        major, minor = f[2].split(":")
        mounts.append(Mount(int(f[0]), (int(major), int(minor)), _unescape(f[3]), _unescape(f[4]), r[0], _unescape(r[1]), f[5]))
    return mounts


def table() -> list[Mount]:
    with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
        return parse(f.read())


def _real(path: str) -> str:
    try:
        return os.path.realpath(path) if path.startswith("/dev/") else path
    except OSError:
        return path


def devnode_of(mount: Mount) -> str | None:
    """The block device a mount is on, or None (tmpfs, overlay, a network filesystem)."""
    if mount.source.startswith("/dev/"):
        return _real(mount.source)
    return None


def at(mountpoint: str | Path) -> Mount | None:
    """The mount whose mount point is ``mountpoint`` (the topmost one), or None."""
    want = os.path.realpath(mountpoint)
    found = None
    for m in table():
        if m.mountpoint == want:
            found = m
    return found


def still_mounted(mount: Mount) -> bool:
    return any(m.mount_id == mount.mount_id for m in table())


def of_device(devnode: str) -> list[Mount]:
    want = _real(devnode)
    return [m for m in table() if devnode_of(m) == want and m.root == "/"]


@dataclass(frozen=True)
class Identity:
    uuid: str | None
    label: str | None
    fstype: str | None
    model: str | None
    serial: str | None


def identity(devnode: str) -> Identity:
    props: dict[str, str] = {}
    try:
        import pyudev

        dev = pyudev.Devices.from_device_file(pyudev.Context(), devnode)
        props = {k: dev.properties.get(k) for k in ("ID_FS_UUID", "ID_FS_LABEL", "ID_FS_TYPE", "ID_MODEL", "ID_SERIAL")}  # type: ignore[misc]
    except Exception:  # no udev database, or not a device udev knows
        props = {}
    if not props.get("ID_FS_UUID"):
        props.update(_blkid(devnode))
    return Identity(props.get("ID_FS_UUID"), props.get("ID_FS_LABEL"), props.get("ID_FS_TYPE"), props.get("ID_MODEL"), props.get("ID_SERIAL"))


def _blkid(devnode: str) -> dict[str, str]:
    try:
        out = subprocess.run(["blkid", "-p", "-o", "export", devnode], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    kv = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {"ID_FS_UUID": kv.get("UUID", ""), "ID_FS_LABEL": kv.get("LABEL", ""), "ID_FS_TYPE": kv.get("TYPE", "")}


def mounted_block_devices() -> Iterator[tuple[Mount, str]]:
    """(mount, device node) of every block-device filesystem mounted at its root."""
    seen = set()
    for m in table():
        node = devnode_of(m)
        if node and m.root == "/" and m.mount_id not in seen:
            seen.add(m.mount_id)
            yield m, node


def wait_for_mount(devnode: str, timeout: float, stop: threading.Event | None = None) -> Mount | None:
    """Wait until ``devnode`` is mounted (POLLPRI on the mount table), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    with open(MOUNTINFO, "rb") as f:
        poller = select.poll()
        poller.register(f, select.POLLPRI | select.POLLERR)
        while True:
            f.seek(0)
            f.read()  # reading re-arms the notification
            found = of_device(devnode)
            if found:
                return found[0]
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                return None
            poller.poll(min(left, 1.0) * 1000)

