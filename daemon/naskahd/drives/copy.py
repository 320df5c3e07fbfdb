"""Copying a batch onto a drive, and reading it back past the page cache.

All access to the drive goes through one directory descriptor opened on the mount's root
(``DriveRoot``), checked to be the very filesystem the mount table names: if the drive is
lazily unmounted mid-sync, nothing is ever written into the empty mount-point folder on
the host's own disk. Per batch (``copy_batch``):

1. each file is copied from the archive to a temp name in its folder on the drive,
   hashed on the way (the archive copy must still match the register), writeback started;
2. one ``syncfs`` makes all their data durable (as an fsync of each would, for the price
   of one), then each is renamed to its final name (never over an existing file);
3. a second ``syncfs`` makes the renames durable, then every file is read back after ``posix_fadvise(DONTNEED)``
   dropped its cached pages (so the bytes come from the drive, not from memory) and its
   SHA-256 compared with the register's. Only files that pass are returned as verified.

A file already at its final name (a sync interrupted after the rename, or a drive
re-registered after a restore) is read back and taken when it matches; never replaced.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from naskahd import durable
from naskahd.drives.mounts import Mount, devnode_of
from naskahd.drives.plan import Item
from naskahd.i18n import _

CHUNK = 1 << 20
# errno values meaning the drive as a whole is gone, full or read-only: the sync stops.
GONE = {errno.EIO, errno.ENODEV, errno.ENXIO, errno.ENOTCONN, errno.ESTALE, errno.ESHUTDOWN}
FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
_RENAME_NOREPLACE = 1


class DriveChanged(Exception):
    """The folder at the mount point is not the mounted drive (unmounted meanwhile)."""


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def syncfs(fd: int) -> None:
    if _libc().syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _rename_noreplace(dirfd: int, src: str, dst: str) -> None:
    fn = getattr(_libc(), "renameat2", None)
    if fn is not None:
        if fn(dirfd, os.fsencode(src), dirfd, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), dst)
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), dst)
    # exFAT, some FUSE filesystems: no RENAME_NOREPLACE. This sync holds the drive's lock
    # and is its only writer, so check-then-rename cannot race.
    if _exists(dirfd, dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst, src_dir_fd=dirfd, dst_dir_fd=dirfd)


def _exists(dirfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


class DriveRoot:
    """The drive's root folder as a descriptor; every path below it is walked with *at()
    calls and O_NOFOLLOW."""

    def __init__(self, mount: Mount) -> None:
        self.mount = mount
        fd = os.open(mount.mountpoint, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        st = os.fstat(fd)
        if (os.major(st.st_dev), os.minor(st.st_dev)) != mount.devnum:
            os.close(fd)
            raise DriveChanged(mount.mountpoint)
        self.fd = fd
        self._dirs: dict[str, int] = {"": fd}
        # FUSE (ntfs-3g, exfat-fuse) does not pass syncfs on to the filesystem's process:
        # there each file is fsynced (FUSE_FSYNC reaches it) and then the block device.
        self.fuse = mount.fstype.startswith("fuse")
        self.devnode = devnode_of(mount)

    def close(self) -> None:
        for fd in self._dirs.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._dirs = {}

    def __enter__(self) -> DriveRoot:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def dir(self, rel: str, *, create: bool) -> int:
        """A descriptor of folder ``rel`` (``a/b/c``); with ``create``, made (durably) if missing."""
        if rel in self._dirs:
            return self._dirs[rel]
        parent_rel, _sep, name = rel.rpartition("/")
        parent = self.dir(parent_rel, create=create)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o750, dir_fd=parent)
            os.fsync(parent)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=parent)
        self._dirs[rel] = fd
        return fd

    def read(self, rel: str) -> bytes | None:
        folder, _sep, name = rel.rpartition("/")
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=self.dir(folder, create=False))
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def write(self, rel: str, data: bytes) -> None:
        """Replace ``rel`` with ``data`` durably (temp, fsync, rename, fsync folder)."""
        folder, _sep, name = rel.rpartition("/")
        dirfd = self.dir(folder, create=True)
        temp = durable.TEMP_PREFIX + secrets.token_hex(8)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640, dir_fd=dirfd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(temp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dirfd)
            raise
        self._sync_dir(dirfd)

    def append(self, rel: str, data: bytes) -> None:
        folder, _sep, name = rel.rpartition("/")
        dirfd = self.dir(folder, create=True)
        fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640, dir_fd=dirfd)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._sync_dir(dirfd)

    def _sync_dir(self, dirfd: int) -> None:
        _fsync_dir(dirfd)
        if self.fuse:
            flush_device(self.devnode)

    def hash_file(self, rel: str) -> tuple[int, str] | None:
        """(size, SHA-256) of ``rel`` read from the drive past the page cache; None if absent."""
        folder, _sep, name = rel.rpartition("/")
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=self.dir(folder, create=False))
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return _hash_fd(fd, drop_cache=True)
        finally:
            os.close(fd)

    def remove_temps(self, folder: str) -> int:
        """Remove the temp files an interrupted sync left in ``folder`` (only naskahd's names)."""
        try:
            dirfd = self.dir(folder, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return 0
        n = 0
        for name in os.listdir(dirfd):
            if name.startswith(durable.TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dirfd)
                    n += 1
        if n:
            os.fsync(dirfd)
        return n


def _hash_fd(fd: int, *, drop_cache: bool) -> tuple[int, str]:
    if drop_cache:
        # After syncfs the pages are clean; dropping them makes the read come from the drive.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    h = hashlib.sha256()
    size = 0
    while chunk := os.read(fd, CHUNK):
        h.update(chunk)
        size += len(chunk)
    if drop_cache:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return size, h.hexdigest()


def _fsync_dir(dirfd: int) -> None:
    try:
        os.fsync(dirfd)
    except OSError as exc:  # a FUSE filesystem without fsyncdir
        if exc.errno != errno.EINVAL:
            raise


def flush_device(devnode: str | None) -> None:
    """fsync the block device: what a FUSE filesystem wrote through its page cache."""
    if not devnode:
        return
    fd = os.open(devnode, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_device_cache(devnode: str | None) -> None:
    """Drop the block device's clean cached pages too (FUSE filesystems such as ntfs-3g
    read the device through it)."""
    if not devnode:
        return
    with contextlib.suppress(OSError):
        fd = os.open(devnode, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


@dataclass
class BatchResult:
    verified: list[tuple[Item, int, str]]  # item, size, sha256 read back
    failed: list[tuple[Item, str]]  # item, why (the rest of the batch goes on)
    full: OSError | None = None  # the drive filled up: what was written before is verified, the rest not tried


def fatal(exc: OSError) -> bool:
    """Does this error stop the whole sync (drive gone, full, read-only)?"""
    return exc.errno in GONE | FULL | READ_ONLY


def copy_batch(root: DriveRoot, archive: Path, items: Sequence[Item], *, devnode: str | None = None,
               cancelled: Callable[[], bool] = lambda: False) -> BatchResult:
    """Copy, flush and verify ``items``; raise OSError for an error that stops the sync
    (``fatal``), after removing this batch's temp files where the drive still allows.

    One ``syncfs`` makes every temp file's data durable before any is renamed (the
    batch's equivalent of an fsync per file, at the cost of one: a crash before it leaves
    only temp names, removed by the next sync); the renames and their folders are made
    durable by a second ``syncfs``; then everything is read back."""
    result = BatchResult([], [])
    written: list[tuple[Item, int, str, str]] = []  # item, dirfd, temp, final name
    to_check: list[tuple[Item, bool]] = []  # item, written by this batch (False: was already there)
    renamed_dirs: set[int] = set()
    try:
        for item in items:
            if cancelled():
                break
            folder, _sep, name = item.drive_path.rpartition("/")
            dirfd = root.dir(folder, create=True)
            if _exists(dirfd, name):
                to_check.append((item, False))
                continue
            try:
                temp = _write_temp(archive / item.wanted.archive_path, dirfd, item, fsync=root.fuse)
            except _SourceBad as exc:
                result.failed.append((item, str(exc)))
                continue
            except OSError as exc:
                if exc.errno in FULL:
                    result.full = exc
                    break
                if fatal(exc):
                    raise
                result.failed.append((item, _("cannot write it on the drive: {error}").format(error=exc.strerror or exc)))
                continue
            written.append((item, dirfd, temp, name))
        try:
            syncfs(root.fd)  # the data of every temp file, before any rename
            if root.fuse:
                flush_device(devnode)
        except OSError as exc:
            if exc.errno not in FULL:
                raise
            result.full = exc
            return result  # the finally clause removes the temp files
        while written:
            item, dirfd, temp, name = written.pop(0)
            try:
                _rename_noreplace(dirfd, temp, name)
            except FileExistsError:
                os.unlink(temp, dir_fd=dirfd)
                to_check.append((item, False))
                continue
            except OSError as exc:
                if fatal(exc):
                    written.insert(0, (item, dirfd, temp, name))
                    raise
                os.unlink(temp, dir_fd=dirfd)
                result.failed.append((item, _("cannot name it on the drive: {error}").format(error=exc.strerror or exc)))
                continue
            to_check.append((item, True))
            renamed_dirs.add(dirfd)
        syncfs(root.fd)  # the renames and the folders
        if root.fuse:
            for dirfd in renamed_dirs:
                _fsync_dir(dirfd)
            flush_device(devnode)
        drop_device_cache(devnode)
        for item, ours in to_check:
            got = root.hash_file(item.drive_path)
            if got == (item.wanted.size, item.wanted.sha256):
                result.verified.append((item, got[0], got[1]))
            elif ours:
                # The copy this batch just wrote did not read back right: remove it, the
                # next sync copies it again.
                folder, _sep, name = item.drive_path.rpartition("/")
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=root.dir(folder, create=False))
                result.failed.append((item, _("the copy read back from the drive differs from the archive")))
            else:
                result.failed.append((item, _("a different file is already on the drive at {path}; it was left as it is").format(path=item.drive_path)))
    finally:
        for _item, dirfd, temp, _name in written:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dirfd)
    return result


class _SourceBad(Exception):
    pass


def _read_source(fd: int) -> bytes:
    """A chunk of the archive file. Its read errors (a bad sector of the archive's disk) are
    the archive's, named as such, never taken for the drive going away."""
    try:
        return os.read(fd, CHUNK)
    except OSError as exc:
        raise _SourceBad(_("its archive file cannot be read: {error}").format(error=exc.strerror)) from None


def _write_temp(source: Path, dirfd: int, item: Item, *, fsync: bool = False) -> str:
    """Copy ``source`` to a new temp file in ``dirfd`` (the batch's syncfs flushes it, or
    with ``fsync`` this call); its name."""
    try:
        src = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise _SourceBad(_("its archive file cannot be read: {error}").format(error=exc.strerror)) from None
    temp = durable.TEMP_PREFIX + secrets.token_hex(8)
    try:
        out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640, dir_fd=dirfd)
        try:
            h = hashlib.sha256()
            size = 0
            while chunk := _read_source(src):
                h.update(chunk)
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
            if (size, h.hexdigest()) != (item.wanted.size, item.wanted.sha256):
                raise _SourceBad(_("its archive file no longer matches the register; run 'naskahd verify --archive'"))
            if fsync:
                os.fsync(out)
        finally:
            os.close(out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dirfd)
        raise
    finally:
        os.close(src)
    return temp
