"""powerfs: a FUSE filesystem for the tests that loses, on command, everything not fsynced.

``PowerMount`` runs one (``server.py`` in a process of its own, ``model.py`` its rules) and
talks to its control socket: ``arm`` a cut at the N-th call of a kind, ``cut`` now,
``remount`` with only what was durable. See docs/reliability.md (power-loss campaign).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def available() -> str | None:
    """Why powerfs cannot run here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if os.geteuid() != 0:
        return "powerfs mounts need root here"
    os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")  # as server.py loads it
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: libfuse3 is not installed
        return f"mfusepy cannot load libfuse ({exc}): pip install mfusepy; apt-get install fuse3"
    return None


def _mounted(mountpoint: Path) -> bool:
    want = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return any(line.split()[4] == want and "fuse.powerfs" in line for line in f)


class PowerMount:
    """A powerfs mount at ``mountpoint``, its durable image and control socket in ``workdir``."""

    def __init__(self, mountpoint: Path, workdir: Path) -> None:
        self.mountpoint = mountpoint
        self.workdir = workdir
        self.image = workdir / "powerfs.image"
        self.socket = workdir / "powerfs.sock"
        self.log = workdir / "powerfs.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.mounts = 0

    def mount(self) -> PowerMount:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE), str(self.mountpoint), "--image", str(self.image), "--control", str(self.socket)],
                stdout=log, stderr=log,
            )
        deadline = time.monotonic() + 20
        while not (_mounted(self.mountpoint) and self.socket.exists()):
            if self.proc.poll() is not None:
                raise RuntimeError(f"powerfs exited ({self.proc.returncode}): {self.log.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("powerfs did not mount within 20 s")
            time.sleep(0.02)
        self.mounts += 1
        return self

    def control(self, op: str, **fields: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(str(self.socket))
            s.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
        answer = dict(json.loads(buf))
        if not answer.get("ok"):
            raise RuntimeError(f"powerfs {op}: {answer.get('error')}")
        return answer

    def arm(self, kind: str, n: int, *, match: str | None = None, phase: str = "before", victims: list[int] | None = None) -> None:
        self.control("arm", kind=kind, n=n, match=match, phase=phase, victims=victims or [])

    def victims(self, pids: list[int]) -> None:
        self.control("victims", victims=pids)

    def cut(self, victims: list[int] | None = None) -> None:
        self.control("cut", **({"victims": victims} if victims is not None else {}))

    def sync(self) -> None:
        self.control("sync")

    def stats(self) -> dict[str, Any]:
        return self.control("stats")

    def trace(self) -> list[tuple[str, str]]:
        return [tuple(t) for t in self.control("trace")["trace"]]  # type: ignore[misc]

    def unmount(self) -> None:
        """Unmount (after a cut: what was durable is in the image already; without one, a
        clean unmount keeps only what was durable too: call ``sync`` first to keep it all)."""
        if _mounted(self.mountpoint):
            r = subprocess.run(["fusermount3", "-u", str(self.mountpoint)], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def remount(self) -> PowerMount:
        """What a machine sees after the power comes back: the durable state only."""
        self.unmount()
        return self.mount()

    def __enter__(self) -> PowerMount:
        return self.mount()

    def __exit__(self, *exc: object) -> None:
        self.unmount()
