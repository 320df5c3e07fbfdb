"""A real systemd, booted in a container: systemd-nspawn on a cached minimal Debian 12 tree.

``scripts/container-tree`` builds the tree once with mmdebstrap (cached as a tarball in
/var/cache/naskahd-test, outside the clone); ``tree()`` unpacks it once beside the tarball.
``Container`` boots it with ``--volatile=overlay`` (every change goes to a tmpfs; the cached
tree stays clean), ``--register=no --keep-unit`` (the host has no system bus; its PID 1 is
not systemd). Without a systemd on the host there is no ``systemd-run --scope``, and on
this host's hybrid hierarchy nspawn refuses to start from a cgroup other than the root
("compat systemd cgroup"): it makes ``payload`` and ``supervisor`` groups at the root of
name=systemd (and of the cgroup2 at unified/), and ``stop()`` kills whatever is left in them and removes them. Commands run inside with ``nsenter -t
<its PID 1> -a``. One container at a time per machine (a lock), as they share the host's
cgroup root.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType

CACHE = Path(os.environ.get("NASKAHD_TEST_CACHE", "/var/cache/naskahd-test"))
# nspawn's groups on a hybrid host: name=systemd, and the cgroup2 it mounts at unified/
# (a group left in one but not the other makes the next nspawn fail to attach).
CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))


def missing_tools() -> list[str]:
    return [t for t in ("systemd-nspawn", "nsenter", "mmdebstrap") if shutil.which(t) is None]


def tree(root: Path) -> Path:
    """The unpacked cached tree (built by scripts/container-tree on first use)."""
    out = subprocess.run([str(root / "scripts" / "container-tree")], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"scripts/container-tree failed:\n{out.stderr[-4000:]}")
    tarball = Path(out.stdout.strip().splitlines()[-1])
    unpacked = tarball.with_suffix(".tree")
    if not (unpacked / "usr" / "lib" / "systemd" / "systemd").exists():
        partial = tarball.with_suffix(f".tree.{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        # GNU tar: owners, modes and device nodes exactly as mmdebstrap made them.
        subprocess.run(["tar", "--numeric-owner", "-xpf", str(tarball), "-C", str(partial)], check=True, timeout=600)
        shutil.rmtree(unpacked, ignore_errors=True)
        partial.rename(unpacked)
    return unpacked


class Container:
    def __init__(self, directory: Path, workdir: Path, binds: dict[str, str] | None = None) -> None:
        self.directory, self.workdir = directory, workdir
        self.binds = binds or {}
        self.name = f"naskahd-test-{uuid.uuid4().hex[:8]}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid1 = 0
        self._lock_fd: int | None = None

    def start(self, timeout: float = 60) -> Container:
        CACHE.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(CACHE / "boot.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._sweep()
        binds = [f"--bind-ro={host}:{inside}" for host, inside in self.binds.items()]
        nspawn = ["systemd-nspawn", "--quiet", "-D", str(self.directory), "-b", "--register=no", "--keep-unit",
                  "--volatile=overlay", "--console=read-only", f"--machine={self.name}", "--hostname=naskahd-test", *binds]
        log = open(self.workdir / "nspawn.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(nspawn,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.pid1:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited {self.proc.returncode}:\n{self.log_tail()}")
            children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
            for pid in children:
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                        self.pid1 = int(pid)
            time.sleep(0.05)
        if not self.pid1:
            raise RuntimeError(f"no systemd in the container after {timeout} s:\n{self.log_tail()}")
        state, out = "", None
        while time.monotonic() < deadline and state not in ("running", "degraded"):
            # Until its bus is up systemctl says nothing (and fails): ask again.
            out = self.run("systemctl", "is-system-running", "--wait", timeout=timeout)
            state = out.stdout.strip()
            if state not in ("running", "degraded"):
                time.sleep(0.2)
        if state not in ("running", "degraded"):
            failed = self.run("systemctl", "--failed", "--no-pager")
            raise RuntimeError(f"the container's systemd is {state!r} ({out.stderr if out else ''}):\n{failed.stdout}{failed.stderr}\n{self.log_tail()}")
        return self

    def run(self, *argv: str, user: str | None = None, input: str | None = None, timeout: float = 120,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """``argv`` inside the container (as root, or as ``user`` through runuser)."""
        cmd = ["runuser", "-u", user, "--", *argv] if user else list(argv)
        out = subprocess.run(["nsenter", "-t", str(self.pid1), "-a", "env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                              "LANG=C.UTF-8", *cmd], capture_output=True, text=True, input=input, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"{argv} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out

    def sh(self, script: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return self.run("sh", "-ec", script, **kwargs)  # type: ignore[arg-type]

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / "nspawn.log").read_text(errors="replace")[-chars:]
        return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.poll() is None:
                if self.pid1:
                    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                        os.kill(self.pid1, signal.SIGRTMIN + 4)  # systemd: poweroff
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            self._sweep()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _sweep(self) -> None:
        """Kill what is left in nspawn's payload/supervisor groups and remove them (we hold
        the boot lock: they are ours, or left by a test run that was killed)."""
        for group in (root / name for root in CGROUP_ROOTS for name in ("payload", "supervisor")):
            if not group.is_dir():
                continue
            for _attempt in range(50):
                pids = [int(p) for f in group.rglob("cgroup.procs") for p in f.read_text().split()]
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.1)
            for sub in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    sub.rmdir()
            with contextlib.suppress(OSError):
                group.rmdir()

    def __enter__(self) -> Container:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
