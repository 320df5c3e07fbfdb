"""The drive as a folder descriptor, and the system calls a sync makes on it.

All access to the drive goes through one directory descriptor opened on the mount's root
(``DriveRoot``), checked to be the very filesystem the mount table names: if the drive is
lazily unmounted mid-sync, nothing is ever written into the empty mount-point folder on
the host's own disk. The batches themselves (copy, flush, rename, read back) are in
batches.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import itertools
import os
import secrets
from collections.abc import Callable

from naskahd import durable
from naskahd.drives.mounts import Mount, devnode_of
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


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    fn = getattr(_libc(), "renameat2", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        fn.restype = ctypes.c_int
    return fn


def _rename_noreplace(dirfd: int, src: str, dst: str) -> None:
    fn = _renameat2()
    if fn is not None:
        if fn(dirfd, src.encode("utf-8", "surrogateescape"), dirfd, dst.encode("utf-8", "surrogateescape"), _RENAME_NOREPLACE) == 0:
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
        def fill(fd: int) -> None:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]

        self._replace(rel, fill)

    def write_from(self, rel: str, source: int) -> None:
        """Replace ``rel`` durably with the whole of the open file ``source``, copied in the
        kernel (``sendfile``): a large file never passes through Python's memory."""
        def fill(fd: int) -> None:
            offset = 0
            while n := os.sendfile(fd, source, offset, SENDFILE_MAX):
                offset += n

        self._replace(rel, fill)

    def _replace(self, rel: str, fill: Callable[[int], None]) -> None:
        folder, _sep, name = rel.rpartition("/")
        dirfd = self.dir(folder, create=True)
        temp = durable.TEMP_PREFIX + secrets.token_hex(8)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640, dir_fd=dirfd)
        try:
            try:
                fill(fd)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dirfd)
            raise
        self._sync_dir(dirfd)

    def append(self, rel: str, data: bytes) -> None:
        """Append ``data`` to ``rel`` durably (its folder fsynced only when the file is new).
        Written at the end without O_APPEND, which fusefat refuses on an existing file: the
        sync holds the drive's lock and is its only writer."""
        folder, _sep, name = rel.rpartition("/")
        dirfd = self.dir(folder, create=True)
        flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            fd, new = os.open(name, flags, dir_fd=dirfd), False
        except FileNotFoundError:
            fd, new = os.open(name, flags | os.O_CREAT, 0o640, dir_fd=dirfd), True
        view = memoryview(data)
        try:
            os.lseek(fd, 0, os.SEEK_END)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except PermissionError:
            if not self.fuse or len(view) != len(data):
                raise
            # fusefat refuses to extend a file of less than one sector (EPERM) that was
            # written before: write it anew, old lines and new (temp, fsync, rename).
            os.close(fd)
            fd = -1
            self.write(rel, (self.read(rel) or b"") + data)
            return
        finally:
            if fd >= 0:
                os.close(fd)
        if new:
            _fsync_dir(dirfd)
        if self.fuse:
            flush_device(self.devnode)

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


def _hash_fd(fd: int, *, drop_cache: bool, view: memoryview | None = None) -> tuple[int, str]:
    """(size, SHA-256) of an open file; with ``drop_cache`` read from the drive itself.
    ``view``: a reusable buffer (a read into it allocates nothing)."""
    if drop_cache:
        # After the flush the pages are clean; dropping them makes the read come from the drive.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    if view is None:
        view = memoryview(bytearray(CHUNK))
    h = hashlib.sha256()
    size = 0
    while n := os.readv(fd, [view]):
        h.update(view[:n])
        size += n
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


def fatal(exc: OSError) -> bool:
    """Does this error stop the whole sync (drive gone, full, read-only)?"""
    return exc.errno in GONE | FULL | READ_ONLY


class _SourceBad(Exception):
    pass


def _read_source(fd: int) -> bytes:
    """A chunk of the archive file. Its read errors (a bad sector of the archive's disk) are
    the archive's, named as such, never taken for the drive going away."""
    try:
        return os.read(fd, CHUNK)
    except OSError as exc:
        raise _SourceBad(_("its archive file cannot be read: {error}").format(error=exc.strerror)) from None


_TEMP_BASE = durable.TEMP_PREFIX + secrets.token_hex(6)  # then a counter: one random draw per process
_temp_counter = itertools.count()
SENDFILE_MAX = 0x7FFFF000  # the most one sendfile call moves


def _write_temp(source: str, dirfd: int, *, fsync: bool = False) -> str:
    """Copy ``source`` to a new temp file in ``dirfd`` in the kernel (``sendfile``: no bytes
    through Python; the read-back checks them); its name. Data made durable by the batch's
    ``syncfs``, or on FUSE by ``fsync`` here."""
    try:
        src = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise _SourceBad(_("its archive file cannot be read: {error}").format(error=exc.strerror)) from None
    temp = f"{_TEMP_BASE}{next(_temp_counter):x}"
    try:
        out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640, dir_fd=dirfd)
        try:
            try:
                while os.sendfile(out, src, None, SENDFILE_MAX):
                    pass
            except OSError as exc:
                if exc.errno in FULL:
                    raise
                # EIO from sendfile may be the archive's disk or the drive: copy again through
                # Python, where a read error is the archive's and a write error the drive's.
                os.ftruncate(out, 0)
                os.lseek(out, 0, os.SEEK_SET)
                os.lseek(src, 0, os.SEEK_SET)
                _copy_slowly(src, out)
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


def _copy_slowly(src: int, out: int) -> None:
    while chunk := _read_source(src):
        view = memoryview(chunk)
        while view:
            view = view[os.write(out, view):]
