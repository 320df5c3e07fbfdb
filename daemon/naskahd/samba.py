"""Does a client still hold a file open for writing? (issue 8; docs/samba-open-files.md)

Content checks cannot see a scanner that leaves a structurally whole file between pages.
When Samba on this machine exports the drop folder, smbd holds a real file descriptor for
every open a client has, so the question becomes "does any process here have the file
open for writing?". The kernel answers that without extra privileges for files the
daemon's user owns (``force user`` on the share), and for any file as root:

1. Read-lease probe (primary): ``fcntl(F_SETLEASE, F_RDLCK)`` on an O_RDONLY descriptor
   fails with EAGAIN exactly when some descriptor on the inode is open for writing
   (fcntl(2), "Leases"; fs/locks.c ``check_conflicting_open``). The lease is dropped at
   once. It needs the caller to own the file or CAP_LEASE; costs a few microseconds.
2. ``smbstatus --locks --json`` (fallback, only as root: smbstatus refuses any other uid):
   Samba's own share-mode database, asked only when the probe cannot answer (a file
   system without leases). Cached for ``ttl`` seconds; bounded by a timeout; after a
   failure it rests for ``backoff`` seconds.

Neither ever raises or waits long; ``None`` means "cannot tell", and the content checks and
the settle window carry the decision alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

# The kernel signals a lease holder when its lease is broken (SIGIO by default, whose
# default action ends the process). The probe holds its lease for microseconds, but if a
# writer opens the file in that window the signal must be harmless: SIGURG is ignored by
# default and naskahd installs no handler for it.
_BREAK_SIGNAL = signal.SIGURG

# statfs f_type of network file systems: writers on other machines hold no descriptor
# here, so "nobody has it open" would be a claim the probe cannot make (linux/magic.h).
_REMOTE_MAGIC = {
    0x6969: "nfs", 0x517B: "smb", 0xFF534D42: "cifs", 0xFE534D42: "smb2", 0x01021997: "9p",
    0x00C36400: "ceph", 0x5346414F: "afs", 0x6B414653: "afs", 0x0BD00BD0: "lustre",
}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _fs_magic(fd: int) -> int | None:
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type is its first field
    if _libc.fstatfs(fd, buf) != 0:
        return None
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def probe_lease(path: str | os.PathLike[str]) -> bool | None:
    """True: a descriptor on this machine has ``path`` open for writing; False: none has; None: cannot tell."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if _fs_magic(fd) in _REMOTE_MAGIC:
            return None
        fcntl.fcntl(fd, fcntl.F_SETSIG, _BREAK_SIGNAL)
        try:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:  # a writer has it open
                return True
            return None  # EACCES (not our file, no CAP_LEASE), EINVAL (no leases here), ...
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    except OSError:
        return None
    finally:
        os.close(fd)  # closing also releases a lease, should F_UNLCK not have run


class SmbStatus:
    """Samba's share-mode database via ``smbstatus --locks --json`` (root only), cached briefly."""

    def __init__(self, configfile: str | None = None, *, ttl: float = 0.5, timeout: float = 1.0, backoff: float = 30.0) -> None:
        self.configfile, self.ttl, self.timeout, self.backoff = configfile, ttl, timeout, backoff
        self._lock = threading.Lock()
        self._at = -1e9  # monotonic time of the last answer (or failure)
        self._writers: set[tuple[int, int]] | None = None  # (st_dev, st_ino) open with write access

    @staticmethod
    def tool() -> str | None:
        """The smbstatus binary, if it is worth asking: it refuses every uid but 0."""
        if os.geteuid() != 0:
            return None
        return shutil.which("smbstatus") or shutil.which("smbstatus", path="/usr/bin:/usr/sbin:/bin:/sbin")

    def open_for_write(self, path: str | os.PathLike[str]) -> bool | None:
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        writers = self._snapshot()
        if writers is None:
            return None
        return (st.st_dev, st.st_ino) in writers

    def _snapshot(self) -> set[tuple[int, int]] | None:
        with self._lock:
            age = time.monotonic() - self._at
            if age < (self.ttl if self._writers is not None else self.backoff):
                return self._writers
            self._writers = self._ask()
            self._at = time.monotonic()
            return self._writers

    def _ask(self) -> set[tuple[int, int]] | None:
        tool = self.tool()
        if tool is None:
            return None
        cmd = [tool, "--locks", "--json"]
        if self.configfile:
            cmd.append(f"--configfile={self.configfile}")
        try:
            out = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=self.timeout, check=False)
            if out.returncode != 0:
                return None
            return parse_smbstatus(out.stdout)
        except (OSError, subprocess.SubprocessError, ValueError):
            return None


def parse_smbstatus(output: bytes | str) -> set[tuple[int, int]]:
    """The (device, inode) of every file some client has open with write or append access.

    ``smbstatus --json`` (Samba >= 4.16): ``open_files`` -> path -> ``fileid`` {devid, inode}
    and ``opens`` -> each with ``access_mask`` {WRITE_DATA, APPEND_DATA, ...}. No open files:
    the key is absent.
    """
    data = json.loads(output)
    writers: set[tuple[int, int]] = set()
    for entry in (data.get("open_files") or {}).values():
        opens = (entry.get("opens") or {}).values()
        if any((o.get("access_mask") or {}).get("WRITE_DATA") or (o.get("access_mask") or {}).get("APPEND_DATA") for o in opens):
            fid = entry.get("fileid") or {}
            with contextlib.suppress(TypeError, ValueError):
                writers.add((int(fid["devid"]), int(fid["inode"])))
    return writers


_smbstatus = SmbStatus()


def open_for_write(path: Path) -> bool | None:
    """Does a client (any process on this machine, smbd included) still hold ``path`` open for writing?

    True / False when the kernel or Samba could say; None when neither can (then the content
    checks decide alone). Never raises; never waits longer than smbstatus' timeout.
    """
    try:
        answer = probe_lease(path)
        if answer is None:
            answer = _smbstatus.open_for_write(path)
        return answer
    except Exception:  # noqa: BLE001 - a helper's failure must never stop filing
        return None
