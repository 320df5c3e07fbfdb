"""The one durable-write helper: temp file, fsync, no-overwrite rename, fsync directory.

Every file that matters (archive copies, age files, state files, later the backup drive)
is written through here. A crash at any instant leaves either no target, or a complete
and fsynced target; at worst a temp file named ``TEMP_PREFIX...`` that start-up
reconciliation removes or finishes. A target that exists is never overwritten unless the
caller asks for it explicitly.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = ".naskahd-tmp-"
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """libc's renameat2 (Linux, glibc 2.28+), or None. Looked up on first use: ctypes
    costs milliseconds to import, and ``naskahd encrypt`` pays them at each start."""
    import ctypes

    return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range (Linux), or None."""
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux, or no such symbol
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int = 0, length: int = 0) -> bool:
    """Ask the kernel to start writing ``fd``'s dirty pages (``length`` 0: to the end) to
    the disk, without waiting: ``sync_file_range(SYNC_FILE_RANGE_WRITE)``, Linux only.

    Only a hint, never durability: an fsync must still follow, and it has less left to
    do. False when the call is missing or fails; the caller may stop asking.
    """
    function = _sync_file_range()
    return function is not None and function(fd, offset, length, _SYNC_FILE_RANGE_WRITE) == 0


def fsync_dir(directory: Path | str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



def makedirs(directory: Path, mode: int = 0o750) -> None:
    """Create ``directory`` and make each newly created level durable in its parent."""
    missing: list[Path] = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, mode)
        fsync_dir(d.parent)


def rename_noreplace(src: Path | str, dst: Path | str) -> None:
    """Rename ``src`` to ``dst``; raise FileExistsError if ``dst`` exists. Same directory tree only."""
    renameat2 = _renameat2()
    if renameat2 is not None:
        rc = renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        import ctypes  # loaded by _renameat2

        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), str(dst))
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), str(src))
    # Filesystems without RENAME_NOREPLACE (some FUSE ones): a hard link refuses to clobber.
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        # Last resort (no hard links, e.g. exFAT): check, then rename. naskahd is the only
        # writer of its target directories, so the window is not reachable in practice.
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst)) from None
        os.rename(src, dst)
        return
    os.unlink(src)


class Staged:
    """A temp file in the target's directory, to be published under its final name later.

    Filing needs two phases (write the copy, commit the register row, then give the copy
    its final name), so the temp file outlives the ``with`` block of a plain write.
    """

    def __init__(self, directory: Path, hint: str = "", mode: int = 0o640) -> None:
        self.directory = directory
        name = TEMP_PREFIX + secrets.token_hex(8) + (("-" + hint) if hint else "")
        self.path = directory / name
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        self.file: BinaryIO = os.fdopen(fd, "wb", buffering=0)
        self.synced = False

    def start_writeback(self) -> None:
        """Start writing the content to the disk without waiting (see start_writeback):
        many files written first and fsynced after share the disk's work."""
        start_writeback(self.file.fileno())

    def sync(self, *, folder: bool = True) -> None:
        """Flush, fsync and close the content; with ``folder`` the temp name survives a
        crash too (without it, only the later rename's fsync makes an entry durable)."""
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
        if folder:
            fsync_dir(self.directory)
        self.synced = True

    def publish(self, target: Path, *, overwrite: bool = False) -> None:
        if not self.synced:
            self.sync()
        if overwrite:
            os.replace(self.path, target)
        else:
            rename_noreplace(self.path, target)
        fsync_dir(target.parent)
        if target.parent != self.directory:
            fsync_dir(self.directory)

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


@contextlib.contextmanager
def create(target: Path, *, overwrite: bool = False, mode: int = 0o640) -> Iterator[BinaryIO]:
    """Write ``target`` durably: yields a binary file; publishes it when the block ends.

    If the block raises, the temp file is removed and ``target`` is untouched.
    """
    staged = Staged(target.parent, mode=mode)
    try:
        yield staged.file
        staged.publish(target, overwrite=overwrite)
    except BaseException:
        staged.discard()
        raise


@contextlib.contextmanager
def create_unnamed(target: Path, *, mode: int = 0o600) -> Iterator[BinaryIO]:
    """Like ``create``, but the file has no name until it is complete (Linux O_TMPFILE):
    if the process is killed mid-write, the kernel frees it and nothing is left behind,
    not even a temp file. For output that must never exist half-written (decrypted
    plaintext). Never overwrites. Where O_TMPFILE is not supported (some FUSE
    filesystems, exFAT) or /proc is missing, it falls back to ``create``.
    """
    directory = target.parent
    fd = -1
    if hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd"):
        try:
            fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, mode)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    if fd < 0:
        with create(target, mode=mode) as f:
            yield f
        return
    with os.fdopen(fd, "wb", buffering=0) as f:
        yield f
        os.fsync(fd)
        # linkat(AT_SYMLINK_FOLLOW) through /proc gives the unnamed file its name (EEXIST
        # if taken). A dir fd makes Python call linkat(); plain link() would not follow.
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.link(f"/proc/self/fd/{fd}", target.name, dst_dir_fd=dir_fd, follow_symlinks=True)
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_bytes(target: Path, data: bytes, *, overwrite: bool = False, mode: int = 0o640) -> None:
    with create(target, overwrite=overwrite, mode=mode) as f:
        f.write(data)
