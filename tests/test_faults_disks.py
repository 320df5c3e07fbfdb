"""Issue 22, fault campaign: the archive's disk full or gone, the drop folder removed, under
the real daemon on real loop-mounted ext4 filesystems.

Each fault ends the same way: a clear message in the log and in `status`, nothing lost, and
filing again by itself once the fault is gone (no restart, no person).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import Daemon, wait_until, write_config
from faults import Stopwatch, figure, fill, no_traceback, nothing_lost, problems, root_on_loopfs, status, wait_healthy, wait_problem

pytestmark = pytest.mark.system


def drop(d: Daemon, rel: str, dropped: dict[str, bytes], size: int = 20_000) -> Path:
    data = os.urandom(size)  # no known type: the content check has nothing to wait for
    (d.drop / rel).write_bytes(data)
    dropped[rel] = data
    return d.drop / rel


def test_a_full_archive_disk_is_reported_and_filing_resumes_when_space_is_back(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "naskahd", settle=0.3)
    with root_on_loopfs(cfg, "archive", size_mb=16):
        d = Daemon(cfg.parent, cfg).start()
        try:
            dropped: dict[str, bytes] = {}
            drop(d, "masuk/before.pdf", dropped)
            d.wait_event("document.registered")
            filler = fill(d.archive)
            waiting = drop(d, "masuk/during.pdf", dropped, size=200_000)
            d.wait_event("document.failed", timeout=30)
            problem = wait_problem(d, "archive", "full")
            assert str(d.archive) in problem, problem
            assert status(d)[0] == 1
            assert waiting.exists(), "a scan left the drop folder without being filed"
            assert any("no space" in p.lower() or "full" in p for p in problems(d, "id"))
            assert d.proc is not None and d.proc.poll() is None
            clock = Stopwatch()
            filler.unlink()
            d.wait_event("document.registered", count=2, timeout=60)
            figure("archive disk full", files=len(dropped), faults=1, recovery_s=clock.seconds())
            wait_healthy(d)
            nothing_lost(d, dropped)
            no_traceback(d)
        finally:
            assert d.stop() == 0


def test_the_archive_disk_unmounted_under_the_running_daemon_files_nothing_beside_it(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "naskahd", settle=0.3)
    with root_on_loopfs(cfg, "archive", size_mb=32) as fs:
        d = Daemon(cfg.parent, cfg).start()
        try:
            dropped: dict[str, bytes] = {}
            drop(d, "masuk/before.pdf", dropped)
            d.wait_event("document.registered")
            fs.umount(lazy=True)  # the disk pulled away: the folder is the empty mount point again
            assert not os.path.ismount(d.archive) and os.listdir(d.archive) == []
            waiting = drop(d, "keluar/during.pdf", dropped)
            gone = d.wait_event("archive.gone", timeout=10)
            assert "mount" in gone["problem"] and gone["folder"] == str(d.archive)
            wait_problem(d, str(d.archive), "goes on by itself")
            assert status(d)[0] == 1
            time.sleep(2)
            assert waiting.exists(), "a scan left the drop folder while the archive disk was away"
            assert os.listdir(d.archive) == [], "filed onto the disk beneath the mount point"
            assert d.proc is not None and d.proc.poll() is None
            clock = Stopwatch()
            fs.mount()
            d.wait_event("archive.back", timeout=10)
            d.wait_event("document.registered", count=2, timeout=120)
            figure("archive disk unmounted", files=len(dropped), faults=1, recovery_s=clock.seconds())
            wait_healthy(d)
            nothing_lost(d, dropped)
            no_traceback(d)
        finally:
            assert d.stop() == 0


def test_the_drop_folder_deleted_and_made_again_is_adopted_watched_and_scanned(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "naskahd", settle=0.3, rescan=3600)  # no periodic scan to fall back on
    d = Daemon(cfg.parent, cfg).start()
    try:
        dropped: dict[str, bytes] = {}
        drop(d, "masuk/before.pdf", dropped)
        d.wait_event("document.registered")
        shutil.rmtree(d.drop)  # a person tidying the share
        gone = d.wait_event("drop.gone", timeout=10)
        assert str(d.drop) in gone["problem"]
        wait_problem(d, str(d.drop), "gone")
        assert status(d)[0] == 1
        clock = Stopwatch()
        d.drop.mkdir()
        d.wait_event("drop.recreated", timeout=10)
        # its subfolders made again, the new folder watched: a scan is filed at once
        wait_until(lambda: all((d.drop / sub).is_dir() for sub in ("masuk", "keluar", "dikecualikan")), 10, "subfolders", d)
        drop(d, "keluar/after.pdf", dropped)
        d.wait_event("document.registered", count=2, timeout=20)
        figure("drop folder deleted and made again", files=len(dropped), faults=1, recovery_s=clock.seconds())
        wait_healthy(d)
        # marked as this installation's again
        from naskahd import installation

        assert installation.read_marker(d.drop)["installation"] == installation.read_marker(d.archive)["installation"]  # type: ignore[index]
        nothing_lost(d, dropped)
        no_traceback(d)
    finally:
        assert d.stop() == 0
