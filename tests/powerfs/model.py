"""powerfs' model: what a filesystem holds now, and what would survive a power cut.

Pure Python, no FUSE: ``server.py`` maps FUSE calls onto it, the unit tests use both.

Two states per inode (the idea is LazyFS's, the rules those of the most careful reading
of POSIX and ext4's ``data=ordered`` guarantees, with nothing extra assumed):

- a file's content, size and mode become durable at its own ``fsync``/``fdatasync``;
- a directory's entries (creates, renames in and out, links, unlinks, mkdirs) become durable
  at that directory's ``fsync``; a name made durable for an inode whose content never was
  comes back as an empty file (ext4's zero-length file after a rename without fsync);
- nothing else is durable: a power cut (``cut``) keeps exactly the durable state, not a
  byte of the rest, and freezes the filesystem (every later call fails with EIO).

Not modelled: torn writes inside one ``write`` (the unsynced tail is dropped whole), a
journal that makes other files' metadata durable as a side effect of one fsync (real ext4
often does: that only hides bugs, it never makes one), reordering of durable writes (all
or nothing per fsync), xattrs, atime.
"""

from __future__ import annotations

import copy
import errno
import os
import pickle
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = 1


class FSError(OSError):
    def __init__(self, code: int) -> None:
        super().__init__(code, os.strerror(code))


@dataclass
class Inode:
    ino: int
    mode: int  # type bits included
    uid: int = 0
    gid: int = 0
    data: bytearray = field(default_factory=bytearray)  # regular files
    entries: dict[str, int] = field(default_factory=dict)  # directories
    target: str = ""  # symlinks
    atime: int = 0
    mtime: int = 0
    ctime: int = 0

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


def _now() -> int:
    return time.time_ns()


class Model:
    """One filesystem: ``live`` is what every reader sees, ``durable`` what a cut keeps."""

    def __init__(self, durable: dict[int, Inode] | None = None) -> None:
        if durable is None:
            t = _now()
            durable = {ROOT: Inode(ROOT, stat.S_IFDIR | 0o755, atime=t, mtime=t, ctime=t)}
        self.durable: dict[int, Inode] = durable
        self.live: dict[int, Inode] = copy.deepcopy(durable)
        self._collect()
        # The durable state keeps only what the new mount reaches: a record left of an inode
        # whose name was lost would otherwise be taken for a new inode given its number (its
        # folder's fsync keeps a record that is already there), and bring old content back
        # under a new name at the next cut.
        self.durable = {ino: node for ino, node in durable.items() if ino in self.live}
        self._count()
        self.next_ino = max(durable) + 1
        self.open_count: dict[int, int] = {}
        self.frozen = False

    # -- persistence of the durable state (across a remount) ---------------------------------
    @classmethod
    def load(cls, image: Path) -> Model:
        with open(image, "rb") as f:
            return cls(pickle.load(f))

    def save_durable(self, image: Path) -> None:
        tmp = image.with_name(image.name + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(self.durable, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, image)

    def _collect(self) -> None:
        """Drop inodes no directory reaches (after a remount: files whose names were lost)."""
        reached, todo = {ROOT}, [ROOT]
        while todo:
            node = self.live[todo.pop()]
            for ino in node.entries.values():
                if ino not in reached and ino in self.live:
                    reached.add(ino)
                    if self.live[ino].is_dir:
                        todo.append(ino)
        for ino in list(self.live):
            if ino not in reached:
                del self.live[ino]
        for node in self.live.values():  # a name whose inode was never durable at all: gone
            for name in [n for n, i in node.entries.items() if i not in self.live]:
                del node.entries[name]

    # -- the power ------------------------------------------------------------------------------
    def check(self) -> None:
        if self.frozen:
            raise FSError(errno.EIO)

    def cut(self) -> None:
        self.frozen = True

    def sync_all(self) -> None:
        """``sync(1)``: everything live becomes durable."""
        self.durable = copy.deepcopy(self.live)

    # -- lookups ----------------------------------------------------------------------------------
    def lookup(self, path: str) -> Inode:
        node = self.live[ROOT]
        for part in [p for p in path.split("/") if p]:
            if not node.is_dir:
                raise FSError(errno.ENOTDIR)
            ino = node.entries.get(part)
            if ino is None:
                raise FSError(errno.ENOENT)
            node = self.live[ino]
        return node

    def parent(self, path: str) -> tuple[Inode, str]:
        head, _sep, name = path.rstrip("/").rpartition("/")
        node = self.lookup(head or "/")
        if not node.is_dir:
            raise FSError(errno.ENOTDIR)
        return node, name

    def nlink(self, node: Inode) -> int:
        if node.is_dir:
            return 2 + self.subdirs.get(node.ino, 0)
        return self.links.get(node.ino, 0)

    def _count(self) -> None:
        self.links: dict[int, int] = {}
        self.subdirs: dict[int, int] = {}
        for d in self.live.values():
            for i in d.entries.values():
                self._linked(d, i, 1)

    def _linked(self, directory: Inode, ino: int, delta: int) -> None:
        self.links[ino] = self.links.get(ino, 0) + delta
        if self.live[ino].is_dir:
            self.subdirs[directory.ino] = self.subdirs.get(directory.ino, 0) + delta

    # -- changes (live only; durability comes from fsync) -------------------------------------------
    def _new(self, mode: int, uid: int, gid: int) -> Inode:
        t = _now()
        node = Inode(self.next_ino, mode, uid, gid, atime=t, mtime=t, ctime=t)
        self.next_ino += 1
        self.live[node.ino] = node
        return node

    def _touch(self, *nodes: Inode) -> None:
        t = _now()
        for n in nodes:
            n.mtime = n.ctime = t

    def create(self, path: str, mode: int, uid: int = 0, gid: int = 0, *, exclusive: bool = True) -> Inode:
        self.check()
        directory, name = self.parent(path)
        if name in directory.entries:
            if exclusive:
                raise FSError(errno.EEXIST)
            return self.live[directory.entries[name]]
        node = self._new(mode, uid, gid)
        directory.entries[name] = node.ino
        self._linked(directory, node.ino, 1)
        self._touch(directory)
        return node

    def mkdir(self, path: str, mode: int, uid: int = 0, gid: int = 0) -> Inode:
        return self.create(path, stat.S_IFDIR | (mode & 0o7777), uid, gid)

    def symlink(self, path: str, target: str, uid: int = 0, gid: int = 0) -> Inode:
        node = self.create(path, stat.S_IFLNK | 0o777, uid, gid)
        node.target = target
        return node

    def unlink(self, path: str) -> None:
        self.check()
        directory, name = self.parent(path)
        ino = directory.entries.get(name)
        if ino is None:
            raise FSError(errno.ENOENT)
        if self.live[ino].is_dir:
            raise FSError(errno.EISDIR)
        del directory.entries[name]
        self._linked(directory, ino, -1)
        self._touch(directory)
        self.live[ino].ctime = _now()
        self._forget(ino)

    def rmdir(self, path: str) -> None:
        self.check()
        directory, name = self.parent(path)
        ino = directory.entries.get(name)
        if ino is None:
            raise FSError(errno.ENOENT)
        node = self.live[ino]
        if not node.is_dir:
            raise FSError(errno.ENOTDIR)
        if node.entries:
            raise FSError(errno.ENOTEMPTY)
        del directory.entries[name]
        self._linked(directory, ino, -1)
        self._touch(directory)
        self._forget(ino)

    def _forget(self, ino: int) -> None:
        """An inode no name and no open file refers to is freed (in the live state only: a
        durable name for it still brings it back after a cut)."""
        if ino != ROOT and self.open_count.get(ino, 0) == 0 and self.links.get(ino, 0) == 0:
            del self.live[ino]
            self.links.pop(ino, None)
            self.subdirs.pop(ino, None)

    def link(self, existing: str, new: str) -> None:
        self.check()
        node = self.lookup(existing)
        if node.is_dir:
            raise FSError(errno.EPERM)
        directory, name = self.parent(new)
        if name in directory.entries:
            raise FSError(errno.EEXIST)
        directory.entries[name] = node.ino
        self._linked(directory, node.ino, 1)
        node.ctime = _now()
        self._touch(directory)

    RENAME_NOREPLACE = 1
    RENAME_EXCHANGE = 2

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        self.check()
        if flags & self.RENAME_EXCHANGE:
            raise FSError(errno.EINVAL)
        src_dir, src_name = self.parent(old)
        ino = src_dir.entries.get(src_name)
        if ino is None:
            raise FSError(errno.ENOENT)
        dst_dir, dst_name = self.parent(new)
        victim = dst_dir.entries.get(dst_name)
        if victim == ino:
            return
        if victim is not None:
            if flags & self.RENAME_NOREPLACE:
                raise FSError(errno.EEXIST)
            v = self.live[victim]
            if v.is_dir and v.entries:
                raise FSError(errno.ENOTEMPTY)
            if v.is_dir != self.live[ino].is_dir:
                raise FSError(errno.EISDIR if v.is_dir else errno.ENOTDIR)
        if victim is not None:
            self._linked(dst_dir, victim, -1)
        del src_dir.entries[src_name]
        self._linked(src_dir, ino, -1)
        dst_dir.entries[dst_name] = ino
        self._linked(dst_dir, ino, 1)
        self._touch(src_dir, dst_dir)
        self.live[ino].ctime = _now()
        if victim is not None:
            self._forget(victim)

    def write(self, node: Inode, data: bytes, offset: int) -> int:
        self.check()
        buf = node.data
        end = offset + len(data)
        if offset > len(buf):
            buf.extend(bytes(offset - len(buf)))
        buf[offset:end] = data
        self._touch(node)
        return len(data)

    def read(self, node: Inode, size: int, offset: int) -> bytes:
        self.check()
        return bytes(node.data[offset : offset + size])

    def truncate(self, node: Inode, length: int) -> None:
        self.check()
        if length < len(node.data):
            del node.data[length:]
        else:
            node.data.extend(bytes(length - len(node.data)))
        self._touch(node)

    # -- durability ---------------------------------------------------------------------------------
    def fsync(self, node: Inode) -> None:
        """The file's content and attributes become durable (not its names)."""
        self.check()
        kept = self.durable.get(node.ino)
        record = Inode(node.ino, node.mode, node.uid, node.gid, bytearray(node.data), {}, node.target,
                       node.atime, node.mtime, node.ctime)
        if node.is_dir:
            record.entries = dict(kept.entries) if kept else {}
        self.durable[node.ino] = record

    def fsyncdir(self, node: Inode) -> None:
        """The directory's entries become durable; an entry's inode that was never made
        durable comes into the durable state as it was created: empty."""
        self.check()
        self.durable[node.ino] = Inode(node.ino, node.mode, node.uid, node.gid, bytearray(), dict(node.entries), "",
                                       node.atime, node.mtime, node.ctime)
        for ino in node.entries.values():
            if ino not in self.durable:
                child = self.live[ino]
                self.durable[ino] = Inode(ino, child.mode, child.uid, child.gid, bytearray(), {}, child.target,
                                          child.ctime, child.ctime, child.ctime)
