"""Step 1: copy (or age-encrypt) a source into a temp file in its archive folder, hashing.

Runs on the store threads (and the early threads, ``early.py``). Writes nothing but a temp
file in the archive (``durable.Staged``); a crash leaves it as an orphan, which start-up
reconciliation removes. Exempt plaintext is read straight from the drop folder into the
encryptor: no plaintext is written anywhere.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from naskahd import complete, durable, naming, reasons
from naskahd.categories import EXEMPT
from naskahd.config import Config
from naskahd.filing.items import Outcome, Ready, Result, Stored
from naskahd.filing.keys import ExemptKeys
from naskahd.i18n import _
from naskahd.log import get_logger
from naskahd.settle import Signature

CHUNK = 1 << 20
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def copy(src: Any, dst: Any) -> tuple[str, int]:
    """Copy ``src`` to ``dst``; (SHA-256, size) of what was copied."""
    h = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        h.update(chunk)
        dst.write(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def source_matches(path: Path, st0: os.stat_result) -> bool:
    """Is the file at ``path`` still the very file that was copied (same inode, unchanged)?"""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(st.st_mode) and Signature.of(st) == Signature.of(st0)


class Store:
    """Step 1 for one file at a time; safe to call from several threads at once."""

    def __init__(
        self, config: Config, recipients: Sequence[Any], keys: ExemptKeys, clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.config = config
        self.recipients = list(recipients)
        self.keys = keys
        self.clock = clock
        self.log = get_logger("filing")

    def source_path(self, relpath: str | bytes) -> Path:
        return self.config.drop / os.fsdecode(relpath)

    def target_dir(self, category: str, when: dt.datetime) -> Path:
        local = when.astimezone(self.config.timezone)
        return self.config.archive / category / f"{local.year:04d}" / f"{local.month:02d}"

    def store(
        self, item: Ready, check: bool = False, guard: Callable[[os.stat_result], bool] | None = None,
    ) -> Stored | Result:
        """Step 1 for ``item``; with ``check``, the content check too, on the same open file.

        ``guard``: asked with the open file's status before anything is copied; False
        refuses the copy with a FAILED result, which decides nothing (early copies:
        early.shows_later_writes).
        """
        exempt = item.category == EXEMPT
        if exempt and not self.recipients:
            return Result(item, Outcome.HELD, self.config.recipient_problem or "")
        source = self.source_path(item.relpath)
        try:
            fd = os.open(source, OPEN_FLAGS)
        except FileNotFoundError:
            return Result(item, Outcome.GONE)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # it became a symlink: never followed
                return Result(item, Outcome.CHANGED, _("it became a symbolic link"))
            # A code: shown in the reader's language, with the user and the fix.
            where = source.parent if exempt else source  # an exempt letter's name is never shown
            return Result(item, Outcome.FAILED, reasons.encode("cannot_open", error=reasons.os_error(exc, where)))
        with open(fd, "rb", buffering=0, closefd=True) as src:
            st0 = os.fstat(fd)
            if not stat.S_ISREG(st0.st_mode) or Signature.of(st0) != item.signature:
                return Result(item, Outcome.CHANGED)
            if guard is not None and not guard(st0):
                return Result(item, Outcome.FAILED, "no early copy: its ctime is too recent or too coarse")
            received_at = self.clock()
            target_dir = self.target_dir(item.category, received_at)
            try:
                durable.makedirs(target_dir)
                staged = durable.Staged(target_dir)
            except OSError as exc:
                return Result(item, Outcome.FAILED,
                              reasons.encode("cannot_write_archive", error=reasons.os_error(exc, target_dir)))
            try:
                if exempt:
                    from naskahd import age

                    sealed = age.encrypt_stream(src, staged.file, self.recipients)
                    sha, size = self.keys.content(sealed.plaintext_sha256), sealed.plaintext_size
                else:
                    sealed = None
                    sha, size = copy(src, staged.file)
                if exempt:  # fsynced now: its read-back check below must see the disk's copy
                    staged.sync(folder=False)
                else:  # fsynced with the rest of the batch (Filer._sync_stores)
                    staged.start_writeback()
                if sealed is not None:
                    # Read the written ciphertext back and open it with the file key still in
                    # memory: the plaintext is removed only if this reproduces its hash.
                    with open(staged.path, "rb") as written:
                        # Its pages are clean after the fsync: dropping them makes this read
                        # come from the disk, not from the page cache the encryptor filled.
                        os.posix_fadvise(written.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                        age.verify_sealed(written, sealed)
                completeness = complete.check_fd(fd, size) if check else None
                if Signature.of(os.fstat(fd)) != item.signature or size != item.signature.size:
                    staged.discard()
                    return Result(item, Outcome.CHANGED, _("it changed while it was being copied"))
            except OSError as exc:
                staged.discard()
                return Result(item, Outcome.FAILED, reasons.encode("cannot_copy", error=reasons.os_error(exc, target_dir)))
            except Exception as exc:
                staged.discard()
                error = self.config.withheld(str(exc))
                self.log.error("document.store_failed", path=naming.shown_relpath(item.relpath, exempt=exempt), error=error)
                return Result(item, Outcome.FAILED, error)
        if not source_matches(source, st0):
            # Renamed or replaced while being copied: no row; the new name is found by events.
            staged.discard()
            return Result(item, Outcome.GONE)
        return Stored(item, staged, sha, size, received_at, sealed, completeness)

    def synced(self, s: Stored) -> Stored | Result:
        """``s`` with its copy fsynced, or a FAILED result with the temp file removed."""
        try:
            s.staged.sync(folder=False)  # the folder's entry is made durable by the final rename's fsync
        except OSError as exc:
            s.staged.discard()
            return Result(s.item, Outcome.FAILED, reasons.encode("cannot_copy", error=reasons.os_error(exc, s.staged.directory)))
        return s
