"""The daemon's state folder: the single-instance lock and the heartbeat file `status` reads.

Lock: ``state/naskahd.lock``, held with flock for the daemon's whole life. Whoever can
take it knows no daemon runs, even after a SIGKILL (the kernel drops the lock); taking it
removes the temp files a crash left in the state folder.

Heartbeat: ``state/daemon.json``, written whole (temp file, rename) and padded with
spaces to ``HEARTBEAT_ROOM`` bytes, so that it always owns that much disk. When the state
disk is full, a new file cannot be written, and the heartbeat is rewritten in place
within the blocks it owns: ``status`` still learns what the daemon has to say.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from naskahd import durable
from naskahd.errors import AlreadyRunning

LOCK_NAME = "naskahd.lock"
HEARTBEAT_NAME = "daemon.json"
HEARTBEAT_ROOM = 4096  # bytes the heartbeat file keeps allocated for in-place rewrites


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
        remove_orphans(self.path.parent)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def remove_orphans(state: Path) -> None:
    """Remove the temp files a crash or a power cut left in the state folder between a state
    file's temp file and its rename (the heartbeat's, the owner file's: durable.py). Only
    the daemon writes them, and it holds the instance lock: none is being written now."""
    with os.scandir(state) as entries:
        for entry in entries:
            if entry.name.startswith(durable.TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    pass


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
    """Write the heartbeat; on a full disk (ENOSPC, EDQUOT) rewrite it in place instead.
    OSError when neither works."""
    path = state / HEARTBEAT_NAME
    body = json.dumps(data, ensure_ascii=False).encode()
    try:
        durable.write_bytes(path, body.ljust(HEARTBEAT_ROOM), overwrite=True, mode=0o644)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not _rewrite_in_place(path, data):
            raise


def _rewrite_in_place(path: Path, data: dict[str, Any]) -> bool:
    """Overwrite the heartbeat file within its size (blocks it already owns: no new block
    is needed); what does not fit is cut (``waiting``, then later problems). False when
    there is no file or not even the shortest form fits."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        room = os.fstat(fd).st_size
        for shorter in _shorter(data):
            body = json.dumps(shorter, ensure_ascii=False).encode()
            if len(body) <= room:
                os.pwrite(fd, body.ljust(room), 0)
                try:
                    os.fdatasync(fd)
                except OSError:
                    pass  # the bytes are in the page cache, where `status` reads them
                return True
        return False
    finally:
        os.close(fd)


def _shorter(data: dict[str, Any]) -> list[dict[str, Any]]:
    problems = list(data.get("problems", []))
    forms = [data, {**data, "waiting": []}]
    forms += [{**data, "waiting": [], "problems": problems[:n]} for n in (3, 1, 0) if n < len(problems)]
    return forms


def file_identity(path: Path) -> list[int] | None:
    """Which file ``path`` is, as it is now (device, inode, size, modification time), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def record_refusal(state: Path, reason: str, register: Path) -> None:
    """A daemon that refuses to start on a damaged register says why in its heartbeat, for
    ``status`` (daemoninfo.stopped), while the register file is the one it found damaged.
    Only when it can take the instance lock (no daemon runs); the last heartbeat's fields are
    kept. A failure to write is not the news here: the refusal is on stderr and in the log."""
    lock = InstanceLock(state)
    try:
        lock.acquire()
    except (OSError, AlreadyRunning):
        return
    try:
        beat = {k: v for k, v in read_heartbeat(state).items() if k not in ("refused", "refused_at", "register")}
        write_heartbeat(state, {**beat, "running": False, "refused": reason,
                                "refused_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                                "register": file_identity(register)})
    except OSError:
        pass
    finally:
        lock.release()


def read_heartbeat(state: Path) -> dict[str, Any]:
    """The heartbeat, or {} when there is none or it cannot be read. An in-place rewrite
    (see write_heartbeat) caught half-way does not parse: it is read again."""
    for attempt in range(3):
        try:
            value = json.loads((state / HEARTBEAT_NAME).read_bytes())  # the padding is JSON whitespace
        except OSError:
            return {}
        except ValueError:
            time.sleep(0.01 * (attempt + 1))
            continue
        return dict(value) if isinstance(value, dict) else {}
    return {}
