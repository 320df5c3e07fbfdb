"""Copying batches onto a drive, and reading them back past the page cache.

``copy_batches`` runs a pipeline on three threads; for batch N, in this order:

1. (the caller's thread) each file is copied from the archive to a new temp name in its
   folder on the drive, in the kernel (``sendfile``; no bytes pass through Python);
2. (the flush thread) one flush (``_flush``: ``syncfs`` of the drive) makes batch N's data
   durable, and with it batch N-1's renames; then batch N's temps are renamed to their
   final names (never over an existing file). Meanwhile the caller's thread writes batch
   N+1: the flush of one batch overlaps the writing of the next;
3. (the verify thread) once the flush of batch N+1 has returned (so batch N's renames are
   durable), every file of batch N is opened, its cached pages dropped
   (``POSIX_FADV_DONTNEED``; they are clean after the flush) and read again from the drive
   (``POSIX_FADV_WILLNEED`` starts the reads of a window of files at once), hashed and
   compared with the register's size and SHA-256. Only files that match are yielded as
   verified, and only then recorded (sync.py).

Why no fsync per file and per folder, as the issue's first sketch had (temp name, fsync,
rename, fsync folder): ``syncfs`` writes back and waits for every dirty page and inode of
the filesystem, folders included, then commits its journal and flushes the device's write
cache, so it gives every file of the batch what an fsync each would, and reports a
failed writeback (since Linux 5.8). What each fsync protected is kept, by the order of
the steps: (a) a final name never points at data that is not on the drive (a crash after
a rename leaves a complete file, which the next sync reads back and takes; before it only
temp names, which the next sync removes), because a file's data is flushed before it is
renamed; (b) a copy recorded as backed up survives a crash, because its rename was
flushed before it is read back and recorded; (c) nothing unverified is recorded, because
what is recorded is what was read back from the drive after the flush, the cached pages
dropped first: that read, not the flush's return code, is the proof. A writeback error
the flush did not report shows there as a mismatch (the file is removed and copied again
by the next sync). FUSE (ntfs-3g, exfat-fuse) is the exception: ``syncfs`` does not reach
the filesystem's process, so there each file is fsynced (FUSE_FSYNC does), the folders
renamed into are fsynced, then the block device.

The archive file is not hashed on the way: the read-back compares the drive's bytes with
the register's SHA-256, which also catches an archive file that no longer matches (then
hashed, to say whose fault a mismatch is). A file already at its final name (a sync
interrupted after the rename, or a drive re-registered after a restore) is read back and
taken when it matches; never replaced.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from naskahd.drives.copy import (CHUNK, FULL, DriveRoot, _fsync_dir, _hash_fd, _rename_noreplace, _SourceBad, _write_temp,
                                 drop_device_cache, fatal, flush_device, syncfs)
from naskahd.drives.plan import Item
from naskahd.i18n import _


@dataclass
class BatchResult:
    verified: list[tuple[Item, int, str]]  # item, size, sha256 read back
    failed: list[tuple[Item, str]]  # item, why (the rest of the batch goes on)
    full: OSError | None = None  # the drive filled up: what was written before is verified, the rest not tried


@dataclass
class _Staged:
    """One batch on its way: temp files written, renamed after the next flush, read back after
    the flush after that."""

    written: list[tuple[Item, int, str, str]] = field(default_factory=list)  # item, dirfd, temp, final name
    to_check: list[tuple[Item, int, str, bool]] = field(default_factory=list)  # item, dirfd, name, written by this sync
    dirs: set[int] = field(default_factory=set)  # folders renamed into
    result: BatchResult = field(default_factory=lambda: BatchResult([], []))


AHEAD = 2  # batches read back but not yet recorded, at most


def copy_batches(root: DriveRoot, archive: Path, batches: Iterable[Sequence[Item]], *, devnode: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Iterator[BatchResult]:
    """Copy, flush and verify every batch; yield each batch's result in order, once all of it
    was read back. Raise OSError for an error that stops the sync (``fatal``; a full drive
    is ``BatchResult.full`` on the last result), after removing the temp files that were
    not renamed yet, where the drive still allows. See the module's docstring for the order
    of the steps and why it is enough."""
    archive_s = os.fspath(archive)
    inflight: deque[Future[BatchResult]] = deque()
    flushing: Future[_Staged | None] | None = None  # the flush thread's job: flush, then rename its batch
    renamed: _Staged | None = None  # renamed by the last job, waiting for the flush that makes the renames durable
    unrenamed: list[_Staged] = []  # batches whose temps may still be there (removed if the sync stops)
    flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="naskahd-flush")
    verifier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="naskahd-verify")

    def verify(staged: _Staged | None) -> None:
        if staged is not None:
            inflight.append(verifier.submit(_verify, root, devnode, archive_s, staged))

    try:
        for batch in batches:
            if cancelled():
                break
            cur = _Staged()
            unrenamed.append(cur)
            _write_batch(root, archive_s, batch, cur, cancelled)  # beside the flush of the batch before
            if flushing is not None:
                verify(flushing.result())  # the batch before is renamed; the one before it durably so
                flushing = None
                unrenamed = [b for b in unrenamed if b.written]  # its job is done: what is left is not renamed
            renamed, before = cur, renamed
            flushing = flusher.submit(_flush_and_rename, root, devnode, cur, before)
            while inflight and (inflight[0].done() or len(inflight) >= AHEAD):
                yield inflight.popleft().result()
            if cur.result.full is not None:
                break
        if flushing is not None:
            verify(flushing.result())
            flushing = None
        if renamed is not None:  # the last renames made durable, then read back
            _flush(root, devnode, renamed.dirs)
            verify(renamed)
            renamed = None
        while inflight:
            yield inflight.popleft().result()
    finally:
        flusher.shutdown(wait=True, cancel_futures=True)
        verifier.shutdown(wait=True, cancel_futures=True)
        for staged in unrenamed:
            for _item, dirfd, temp, _name in staged.written:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=dirfd)


def _flush_and_rename(root: DriveRoot, devnode: str | None, cur: _Staged, before: _Staged | None) -> _Staged | None:
    """On the flush thread: one flush makes ``cur``'s data and ``before``'s renames durable;
    then ``cur`` is renamed. ``before``, now ready to be read back, is returned."""
    _flush(root, devnode, before.dirs if before is not None else ())
    _rename_batch(cur)
    return before


def _write_batch(root: DriveRoot, archive: str, batch: Sequence[Item], cur: _Staged, cancelled: Callable[[], bool]) -> None:
    failed = cur.result.failed
    for item in batch:
        if cancelled():
            break
        folder, _sep, name = item.drive_path.rpartition("/")
        dirfd = root.dir(folder, create=True)
        try:
            temp = _write_temp(f"{archive}/{item.wanted.archive_path}", dirfd, fsync=root.fuse)
        except _SourceBad as exc:
            failed.append((item, str(exc)))
            continue
        except OSError as exc:
            if exc.errno in FULL:
                cur.result.full = exc
                break
            if fatal(exc):
                raise
            failed.append((item, _("cannot write it on the drive: {error}").format(error=exc.strerror or exc)))
            continue
        cur.written.append((item, dirfd, temp, name))


def _flush(root: DriveRoot, devnode: str | None, renamed_dirs: Iterable[int]) -> None:
    """Everything written to the drive so far is on it: one ``syncfs`` (ext4, NTFS and exFAT
    by the kernel); on FUSE, where syncfs does not reach the filesystem's process, the files
    were fsynced one by one, here the folders renamed into, then the block device."""
    syncfs(root.fd)
    if root.fuse:
        for dirfd in renamed_dirs:
            _fsync_dir(dirfd)
        flush_device(devnode)


def _rename_batch(cur: _Staged) -> None:
    written, cur.written = cur.written, []
    for k, (item, dirfd, temp, name) in enumerate(written):
        try:
            _rename_noreplace(dirfd, temp, name)
        except FileExistsError:  # already there (an interrupted sync, a restored drive): read back, never replaced
            os.unlink(temp, dir_fd=dirfd)
            cur.to_check.append((item, dirfd, name, False))
            continue
        except OSError as exc:
            if fatal(exc):
                cur.written = written[k:]
                raise
            os.unlink(temp, dir_fd=dirfd)
            cur.result.failed.append((item, _("cannot name it on the drive: {error}").format(error=exc.strerror or exc)))
            continue
        cur.to_check.append((item, dirfd, name, True))
        cur.dirs.add(dirfd)


def _verify(root: DriveRoot, devnode: str | None, archive: str, staged: _Staged) -> BatchResult:
    """Read the batch back from the drive (runs on the verify thread, after the flush)."""
    drop_device_cache(devnode)
    view = memoryview(bytearray(CHUNK))
    result = staged.result
    todo = staged.to_check
    for k in range(0, len(todo), WINDOW):
        window = todo[k:k + WINDOW]
        fds = _drop_and_read_ahead(window)
        try:
            for (item, dirfd, name, ours), fd in zip(window, fds):
                _check(item, dirfd, name, ours, fd, archive, view, result)
        finally:
            for fd in fds:
                if fd >= 0:
                    os.close(fd)
    return result


WINDOW = 64  # files whose reads from the drive are in flight at once


def _drop_and_read_ahead(window: Sequence[tuple[Item, int, str, bool]]) -> list[int]:
    """Open each file, drop its (clean, flushed) cached pages and ask the kernel to read it
    from the drive again (``POSIX_FADV_WILLNEED`` starts the reads and returns): the reads of
    the window run at once instead of one file after the other. -1 for a file not there."""
    fds = []
    try:
        for _item, dirfd, name, _ours in window:
            try:
                fd = _open_to_check(name, dirfd)
            except FileNotFoundError:
                fds.append(-1)
                continue
            fds.append(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except BaseException:
        for fd in fds:
            if fd >= 0:
                os.close(fd)
        raise
    return fds


_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
_NOATIME = getattr(os, "O_NOATIME", 0)


def _open_to_check(name: str, dirfd: int) -> int:
    """Open a file on the drive to read it back, without updating its access time where the
    drive allows (``O_NOATIME``: with relatime, the first read of a new file would dirty its
    inode again just after the flush; only the file's owner may ask)."""
    if _NOATIME:
        try:
            return os.open(name, _READ | _NOATIME, dir_fd=dirfd)
        except PermissionError:  # not ours (a file already on the drive), or a filesystem that refuses it
            pass
    return os.open(name, _READ, dir_fd=dirfd)


def _check(item: Item, dirfd: int, name: str, ours: bool, fd: int, archive: str, view: memoryview,
           result: BatchResult) -> None:
    want = (item.wanted.size, item.wanted.sha256)
    got = None
    if fd >= 0:
        got = _hash_fd(fd, drop_cache=False, view=view)  # its pages were dropped, then read from the drive
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # the backup does not stay in memory
    if got == want:
        result.verified.append((item, want[0], want[1]))
    elif ours:
        # The copy this sync just wrote did not read back right: remove it, the next
        # sync copies it again. Say whose fault it is: the archive's file, or the drive.
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dirfd)
        if _archive_hash(f"{archive}/{item.wanted.archive_path}", view) != want:
            why = _("its archive file no longer matches the register; run 'naskahd verify --archive'")
        else:
            why = _("the copy read back from the drive differs from the archive")
        result.failed.append((item, why))
    else:
        result.failed.append((item, _("a different file is already on the drive at {path}; it was left as it is").format(path=item.drive_path)))


def _archive_hash(path: str, view: memoryview) -> tuple[int, str] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return _hash_fd(fd, drop_cache=False, view=view)
    except OSError:
        return None
    finally:
        os.close(fd)
