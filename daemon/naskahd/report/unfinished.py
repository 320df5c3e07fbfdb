"""Reports whose command was stopped half-way (SIGKILL, a power cut) are finished later.

``registry.generate`` registers a report's row first (its number is printed in the report),
renders and delivers it without holding the register's write lock (the daemon keeps
filing), then records its SHA-256. A command killed in between leaves a row without a hash.
Such a row is never removed and its number never given again: the next report command
finishes it, rendering it again from the snapshot the row holds (the same bytes the stopped
command made or would have made) and recording it as generated.

A row without a hash may also be one that another command is making right now. Every
command making a report holds a shared lock on a file beside the register
(``register.db.lock_path``) from registering its row until it is finished; finishing
others' rows needs the exclusive lock, taken without waiting: whenever it is granted, no
command is making a report, so every row without a hash is a stopped one. The lock goes
with its process, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from sqlalchemy.orm import Session, sessionmaker

from naskahd.register.db import lock_path

LOCK = "reports"


def _open(sessions: sessionmaker[Session]) -> int | None:
    path = lock_path(str(sessions.kw["bind"].url), LOCK)
    if path is None:
        return None
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
    except OSError:  # a reader without write access to the state folder: it makes no report
        return None


@contextlib.contextmanager
def making(sessions: sessionmaker[Session]) -> Iterator[None]:
    """Held while this command makes a report (shared: commands do not wait for each other)."""
    fd = _open(sessions)
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def alone(sessions: sessionmaker[Session]) -> Iterator[bool]:
    """True inside if no command is making a report (the exclusive lock, not waited for)."""
    fd = _open(sessions)
    if fd is None:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)

