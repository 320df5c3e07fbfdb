"""The daemon's state folder: the single-instance lock and the heartbeat file `status` reads.

Lock: ``state/naskahd.lock``, held with flock for the daemon's whole life. Whoever can
take it knows no daemon runs, even after a SIGKILL (the kernel drops the lock).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from naskahd import durable
from naskahd.errors import AlreadyRunning

LOCK_NAME = "naskahd.lock"
HEARTBEAT_NAME = "daemon.json"


class InstanceLock:
    def __init__(self, state: Path) -> None:
        self.path = state / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(state=str(self.path.parent), pid=read_heartbeat(self.path.parent).get("pid", "?")) from None
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def daemon_running(state: Path) -> bool:
    """True when some process holds the instance lock."""
    try:
        fd = os.open(state / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def write_heartbeat(state: Path, data: dict[str, Any]) -> None:
    durable.write_bytes(state / HEARTBEAT_NAME, json.dumps(data, ensure_ascii=False).encode(), overwrite=True, mode=0o644)


def read_heartbeat(state: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((state / HEARTBEAT_NAME).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}
