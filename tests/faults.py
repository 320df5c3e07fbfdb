"""Helpers of the fault campaign (issue 22): small loop-mounted filesystems, filling one
to the last block, and the checks every fault test ends with.

Not a conftest: the tests/test_faults_*.py modules import from here. Every loop device is
taken with ``losetup -f --show`` and every mount made here is undone at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import Daemon, require_root, require_tool, wait_until
from naskahd import config, installation


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=120)


class LoopFs:
    """An ext4 image on a loop device mounted at ``mountpoint``; unmount and mount again."""

    def __init__(self, image: Path, mountpoint: Path, size_mb: int) -> None:
        require_root()
        require_tool("mkfs.ext4")
        require_tool("losetup")
        self.image, self.mountpoint = image, mountpoint
        with open(image, "wb") as f:
            f.truncate(size_mb << 20)
        run("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image))
        self.loop: str | None = None

    def mount(self) -> None:
        if self.loop is None:
            self.loop = run("losetup", "-f", "--show", str(self.image)).stdout.strip()
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        run("mount", "-t", "ext4", self.loop, str(self.mountpoint))

    def umount(self, *, lazy: bool = False) -> None:
        run("umount", *(["-l"] if lazy else []), str(self.mountpoint), check=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            while os.path.ismount(self.mountpoint):
                run("umount", "-l", str(self.mountpoint))
        if self.loop is not None:
            run("losetup", "-d", self.loop, check=False)
            self.loop = None


@contextlib.contextmanager
def root_on_loopfs(cfg: Path, role: str, size_mb: int = 16) -> Iterator[LoopFs]:
    """The installation's ``role`` folder (archive, state, drop) on a fresh small ext4,
    marked as ``naskahd init`` would have marked it."""
    folder = cfg.parent / role
    fs = LoopFs(cfg.parent.parent / f"{role}.img", folder, size_mb)
    try:
        for entry in folder.iterdir():  # the mount point, as a disk unmounted leaves it: empty
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        fs.mount()
        loaded = config.load(str(cfg))
        other = next(r for r in ("drop", "archive", "state") if r != role)
        installation.write_markers(loaded, installation.read_marker(getattr(loaded, other))["installation"])
        if role == "drop":
            for sub in ("masuk", "keluar", "dikecualikan"):
                (folder / sub).mkdir(exist_ok=True)
        yield fs
    finally:
        fs.close()


def fill(folder: Path, name: str = "filler") -> Path:
    """Write a filler file until not one more byte fits (fsynced: no reservation left).
    The one disk-filling loop of the tests (the fault campaign, test_state_disk_full)."""
    filler = folder / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 20, 65536, 4096, 1024, 1):
            for _ in range(1 << 16):
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
            with contextlib.suppress(OSError):
                os.fsync(fd)
    finally:
        os.close(fd)
    left = os.statvfs(folder).f_bavail
    assert left == 0, f"precondition: the disk of {folder} is full ({left} blocks available)"
    return filler


def status(d: Daemon, lang: str = "en") -> tuple[int, dict[str, Any]]:
    done = d.cli("status", "--json", env={"LANGUAGE": lang})
    assert done.returncode >= 0, f"status was killed by signal {-done.returncode}: {done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def problems(d: Daemon, lang: str = "en") -> list[str]:
    return list(status(d, lang)[1].get("problems", []))


def wait_problem(d: Daemon, *words: str, timeout: float = 30) -> str:
    """The first problem in `status` holding every one of ``words`` (waited for)."""
    found = wait_until(lambda: next((p for p in problems(d) if all(w in p for w in words)), None), timeout,
                       f"a status problem with {words}", d)
    return str(found)


def wait_healthy(d: Daemon, timeout: float = 60) -> None:
    wait_until(lambda: status(d)[0] == 0, timeout, "status healthy (exit 0)", d)


def wait_filed(d: Daemon, n: int, timeout: float = 120) -> None:
    """Until ``n`` scans are registered: the daemon's log says so (read in the test process),
    then the register, once (``naskahd list``). Polling ``list`` instead ran a Python process
    every 50 ms beside the daemon on the two shared cores."""
    d.wait_event("document.registered", count=n, timeout=timeout)
    assert len(d.documents()) == n, f"the log says {n} registered, the register differs"


def no_traceback(d: Daemon) -> None:
    assert "Traceback" not in d.log_text(), d.log_text()[-4000:]


def nothing_lost(d: Daemon, dropped: dict[str, bytes], *, settled: bool = True, **kwargs: Any) -> None:
    """The shared invariants (tests/campaign/invariants.py) over the tree, the daemon's log
    included; ``settled``: everything dropped has been filed by now."""
    from campaign.invariants import check

    log = d.root.parent / "daemon.log"
    log.write_text(d.log_text(), encoding="utf-8")
    bad = check(d.config, dropped=dropped, settled=settled, logs=[log], **kwargs)
    assert not bad, "\n".join(bad)
    if settled:
        left = [rel for rel in dropped if (d.drop / rel).exists()]
        assert not left, f"still in the drop folder: {left}"

def figure(scenario: str, **values: Any) -> None:
    """A measured figure for docs/reliability.md, appended (as a JSON line) to the file
    named by NASKAHD_FAULT_FIGURES when it is set."""
    target = os.environ.get("NASKAHD_FAULT_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps({"scenario": scenario, **values}) + "\n")


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def seconds(self) -> float:
        return round(time.monotonic() - self.start, 2)
