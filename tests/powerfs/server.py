"""powerfs' FUSE server (mfusepy on libfuse 3): ``python -m powerfs MOUNTPOINT --image FILE --control SOCKET``.

Every call goes to the model (model.py) under one lock. A control socket (one JSON object a
line, one answer a line) arms a cut: at the N-th call of a kind (``fsync``, ``fsyncdir``,
``rename``, ``create``, ``write``, ``unlink``, ``link``, ``mkdir``, ``truncate``), optionally
only on paths matching a glob, before or after the call takes effect, the power goes: the
durable state is written to the image, the filesystem freezes (EIO from then on) and the
victim processes get SIGKILL, all before the call returns, so they never see its answer.
Commands: ``arm``, ``cut``, ``sync``, ``stats``, ``trace`` (every counted call so far),
``ping``. A new server on the same image is the remount: only what was durable is there.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fnmatch
import json
import os
import signal
import socket
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

# libfuse 3, not 2 (mfusepy prefers 2 when both are installed; exfat-fuse and ntfs-3g bring
# it): only libfuse 3 passes rename's flags, so RENAME_NOREPLACE reaches the model.
os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")
import mfusepy as fuse  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import FSError, Inode, Model  # noqa: E402

COUNTED = ("create", "mkdir", "write", "fsync", "fsyncdir", "rename", "link", "unlink", "rmdir", "truncate", "symlink")


class PowerFS(fuse.Operations):
    use_ns = True

    def __init__(self, model: Model, image: Path) -> None:
        self.model = model
        self.image = image
        self._mutex = threading.RLock()
        self.handles: dict[int, Inode] = {}
        self.next_fh = 1
        self.counts: dict[str, int] = {k: 0 for k in COUNTED}
        self.trace: list[tuple[str, str]] = []
        self.trigger: dict[str, Any] | None = None
        self.fired: dict[str, Any] | None = None
        self.victims: list[int] = []

    # -- power ------------------------------------------------------------------------------------
    def _count(self, kind: str, path: str, phase: str) -> None:
        """Called before (``phase`` "before") and after each counted call takes effect."""
        if phase == "before":
            self.counts[kind] += 1
            self.trace.append((kind, path))
        t = self.trigger
        if t is None or t["kind"] != kind or t.get("phase", "before") != phase:
            return
        if t.get("match") and not fnmatch.fnmatch(path, t["match"]):
            return
        t["seen"] = t.get("seen", 0) + 1
        if t["seen"] == t["n"]:
            caller = fuse.fuse_get_context()[2]
            self.fired = {"kind": kind, "path": path, "phase": phase, "n": t["n"], "seq": len(self.trace), "pid": caller}
            if not self.victims and caller > 1 and caller != os.getpid():
                # none named: the caller dies with the power (0: the kernel's own writeback)
                self.victims.append(caller)
            self.cut()
            raise FSError(errno.EIO)

    def cut(self) -> None:
        with self._mutex:
            if self.model.frozen:
                return
            self.model.cut()
            self.model.save_durable(self.image)
            for pid in self.victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        with self._mutex:
            if op == "ping":
                return {"ok": True, "frozen": self.model.frozen}
            if op == "arm":
                self.trigger = {"kind": request["kind"], "n": int(request.get("n", 1)), "match": request.get("match"),
                                "phase": request.get("phase", "before")}
                self.victims = [int(p) for p in request.get("victims", [])]
                self.fired = None
                return {"ok": True}
            if op == "victims":
                self.victims = [int(p) for p in request.get("victims", [])]
                return {"ok": True}
            if op == "disarm":
                self.trigger = None
                return {"ok": True}
            if op == "cut":
                self.victims = [int(p) for p in request.get("victims", self.victims)]
                self.fired = self.fired or {"kind": "command", "path": "", "phase": "", "n": 0, "seq": len(self.trace)}
                self.cut()
                return {"ok": True}
            if op == "sync":
                self.model.check()
                self.model.sync_all()
                self.model.save_durable(self.image)
                return {"ok": True}
            if op == "stats":
                return {"ok": True, "counts": dict(self.counts), "frozen": self.model.frozen, "fired": self.fired}
            if op == "trace":
                return {"ok": True, "trace": self.trace}
        return {"ok": False, "error": f"unknown op {op!r}"}

    # -- helpers ------------------------------------------------------------------------------------
    def _attrs(self, node: Inode) -> dict[str, Any]:
        size = len(node.target) if stat.S_ISLNK(node.mode) else (4096 if node.is_dir else len(node.data))
        return {
            "st_ino": node.ino, "st_mode": node.mode, "st_nlink": self.model.nlink(node), "st_uid": node.uid,
            "st_gid": node.gid, "st_size": size, "st_blocks": (size + 511) // 512, "st_blksize": 4096,
            "st_atime": node.atime, "st_mtime": node.mtime, "st_ctime": node.ctime,
        }

    def _node(self, path: str | None, fh: int | None) -> Inode:
        if fh:
            node = self.handles.get(fh)
            if node is not None:
                return node
        if path is None:
            raise FSError(errno.EBADF)
        return self.model.lookup(path)

    def _handle(self, node: Inode) -> int:
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = node
        self.model.open_count[node.ino] = self.model.open_count.get(node.ino, 0) + 1
        return fh

    def _counted(self, kind: str, path: str, action: Any) -> Any:
        with self._mutex:
            self.model.check()
            self._count(kind, path, "before")
            result = action()
            self._count(kind, path, "after")
            return result

    # -- FUSE operations --------------------------------------------------------------------------------
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        with self._mutex:
            self.model.check()
            return self._attrs(self._node(path, fh))

    def statfs(self, path: str) -> dict[str, int]:
        with self._mutex:
            self.model.check()
            return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1 << 24, "f_bfree": 1 << 23, "f_bavail": 1 << 23,
                    "f_files": 1 << 20, "f_ffree": 1 << 19, "f_favail": 1 << 19, "f_namemax": 255}

    def access(self, path: str, amode: int) -> int:
        with self._mutex:
            self.model.check()
            self.model.lookup(path)
            return 0

    def readlink(self, path: str) -> str:
        with self._mutex:
            self.model.check()
            return self.model.lookup(path).target

    def opendir(self, path: str) -> int:
        with self._mutex:
            self.model.check()
            node = self.model.lookup(path)
            if not node.is_dir:
                raise FSError(errno.ENOTDIR)
            return self._handle(node)

    def readdir(self, path: str, fh: int) -> list[Any]:
        with self._mutex:
            self.model.check()
            node = self._node(path, fh)
            out: list[Any] = [(".", {"st_ino": node.ino, "st_mode": node.mode}, 0), ("..", None, 0)]
            for name, ino in node.entries.items():
                child = self.model.live[ino]
                out.append((name, {"st_ino": ino, "st_mode": child.mode}, 0))
            return out

    def releasedir(self, path: str | None, fh: int) -> int:
        return self.release(path, fh)

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        node = self._node(path, fh)
        self._counted("fsyncdir", path or "", lambda: self.model.fsyncdir(node))
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        uid, gid, _pid = fuse.fuse_get_context()
        self._counted("mkdir", path, lambda: self.model.mkdir(path, mode, uid, gid))
        return 0

    def rmdir(self, path: str) -> int:
        self._counted("rmdir", path, lambda: self.model.rmdir(path))
        return 0

    def create(self, path: str, mode: int, flags: int = 0) -> int:
        uid, gid, _pid = fuse.fuse_get_context()

        def make() -> int:
            node = self.model.create(path, stat.S_IFREG | (mode & 0o7777), uid, gid, exclusive=bool(flags & os.O_EXCL))
            if flags & os.O_TRUNC:
                self.model.truncate(node, 0)
            return self._handle(node)

        return int(self._counted("create", path, make))

    def mknod(self, path: str, mode: int, dev: int) -> int:
        uid, gid, _pid = fuse.fuse_get_context()
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            raise FSError(errno.EPERM)
        self._counted("create", path, lambda: self.model.create(path, mode, uid, gid))
        return 0

    def symlink(self, target: str, source: str) -> int:  # mfusepy: symlink(link path, its target)
        uid, gid, _pid = fuse.fuse_get_context()
        self._counted("symlink", target, lambda: self.model.symlink(target, source, uid, gid))
        return 0

    def link(self, target: str, source: str) -> int:  # mfusepy: link(new name, existing file)
        self._counted("link", target, lambda: self.model.link(source, target))
        return 0

    def unlink(self, path: str) -> int:
        self._counted("unlink", path, lambda: self.model.unlink(path))
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        self._counted("rename", new, lambda: self.model.rename(old, new, flags))
        return 0

    def open(self, path: str, flags: int) -> int:
        with self._mutex:
            self.model.check()
            node = self.model.lookup(path)
            if flags & os.O_TRUNC:
                self._count("truncate", path, "before")
                self.model.truncate(node, 0)
            return self._handle(node)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        with self._mutex:
            return self.model.read(self._node(path, fh), size, offset)

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        node = self._node(path, fh)
        return int(self._counted("write", path or "", lambda: self.model.write(node, data, offset)))

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        node = self._node(path, fh)
        self._counted("truncate", path or "", lambda: self.model.truncate(node, length))
        return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        node = self._node(path, fh)
        self._counted("fsync", path or "", lambda: self.model.fsync(node))
        return 0

    def flush(self, path: str | None, fh: int) -> int:
        return 0

    def release(self, path: str | None, fh: int) -> int:
        with self._mutex:
            node = self.handles.pop(fh, None)
            if node is not None:
                left = self.model.open_count.get(node.ino, 1) - 1
                self.model.open_count[node.ino] = left
                if left <= 0 and node.ino in self.model.live:
                    self.model.open_count.pop(node.ino, None)
                    self.model._forget(node.ino)
            return 0

    def chmod(self, path: str | None, mode: int) -> int:
        with self._mutex:
            self.model.check()
            node = self.model.lookup(path or "/")
            node.mode = stat.S_IFMT(node.mode) | (mode & 0o7777)
            return 0

    def chown(self, path: str | None, uid: int, gid: int) -> int:
        with self._mutex:
            self.model.check()
            node = self.model.lookup(path or "/")
            if uid != -1 and uid != 0xFFFFFFFF:
                node.uid = uid
            if gid != -1 and gid != 0xFFFFFFFF:
                node.gid = gid
            return 0

    def utimens(self, path: str | None, times: tuple[int, int] | None = None) -> int:
        with self._mutex:
            self.model.check()
            node = self.model.lookup(path or "/")
            now = time.time_ns()
            node.atime, node.mtime = times if times else (now, now)
            return 0

    def fallocate(self, path: str | None, mode: int, offset: int, size: int, fh: int) -> int:
        node = self._node(path, fh)
        if mode != 0:
            raise FSError(errno.EOPNOTSUPP)
        with self._mutex:
            self.model.check()
            if offset + size > len(node.data):
                self.model.truncate(node, offset + size)
        return 0


class _FUSE(fuse.FUSE):
    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        # mfusepy drops rename's flags; RENAME_NOREPLACE must reach the model (durable.py uses it)
        return self.operations.rename(old.decode(self.encoding, self.errors), new.decode(self.encoding, self.errors), flags)


def _serve_control(fs: PowerFS, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)

    def client(conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            for line in f:
                try:
                    answer = fs.control(json.loads(line))
                except OSError as exc:
                    answer = {"ok": False, "error": str(exc)}
                f.write(json.dumps(answer).encode() + b"\n")
                f.flush()

    while True:
        conn, _addr = server.accept()
        threading.Thread(target=client, args=(conn,), daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="powerfs")
    parser.add_argument("mountpoint")
    parser.add_argument("--image", required=True, help="the durable state: loaded if it exists, written at each cut")
    parser.add_argument("--control", required=True, help="the control socket's path")
    args = parser.parse_args(argv)
    image = Path(args.image)
    model = Model.load(image) if image.exists() else Model()
    fs = PowerFS(model, image)
    threading.Thread(target=_serve_control, args=(fs, Path(args.control)), daemon=True).start()
    _FUSE(fs, args.mountpoint, foreground=True, nothreads=False, use_ino=True, hard_remove=True,
          default_permissions=True, allow_other=True, fsname="powerfs", subtype="powerfs",
          attr_timeout=0, entry_timeout=0, negative_timeout=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
