"""Process hardening done first thing in every naskahd process: no core dumps.

A core dump of the daemon can hold an early copy's plaintext buffer or an age file key;
one of ``naskahd decrypt`` holds a decrypted letter and the officer's identity. So every
process turns dumps off before it reads anything: ``RLIMIT_CORE`` 0 (hard limit too, so
nothing it starts can raise it again) and ``prctl(PR_SET_DUMPABLE, 0)``, which also stops
core dumps piped to systemd-coredump or apport (those ignore RLIMIT_CORE) and keeps
other processes of the same user from ptrace-attaching or reading ``/proc/<pid>/mem``.
"""

from __future__ import annotations

import resource
import sys

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _prctl(option: int, arg: int = 0) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.restype = ctypes.c_int
    return int(libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)))


def no_core_dumps() -> None:
    """Turn core dumps off for this process and its children. Never fails: on a system
    without prctl (not Linux) only the resource limit is set."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):  # pragma: no cover - lowering a limit is always allowed
        pass
    if sys.platform.startswith("linux"):
        try:
            _prctl(PR_SET_DUMPABLE, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass


def dumpable() -> int:
    """prctl(PR_GET_DUMPABLE): 0 once ``no_core_dumps`` ran (for tests and diagnostics)."""
    return _prctl(PR_GET_DUMPABLE)
