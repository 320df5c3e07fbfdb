"""Issue 22, fault campaign: backup drives that are full or read-only, and what happens once
the fault is gone, on real loop-mounted drives with real udev (tests/test_drives_daemon.py
has the reports themselves and the drive detached mid-copy)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Daemon, wait_until, write_config
from drives_fixtures import Drives, drives, run, udevd  # noqa: F401  (fixtures)
from faults import Stopwatch, figure, fill, no_traceback, nothing_lost, status, wait_filed
from test_drives_daemon import cli, drive_status, register

pytestmark = pytest.mark.system


def start(tmp_path: Path, n: int, size: int) -> tuple[Daemon, dict[str, bytes]]:
    cfg = write_config(tmp_path / "naskahd", settle=0.2)
    d = Daemon(cfg.parent, cfg).start()
    d.wait_event("drives.watching", timeout=30)
    dropped = {f"masuk/s{i:03d}.pdf": os.urandom(size) for i in range(n)}
    for rel, data in dropped.items():
        (d.drop / rel).write_bytes(data)
    wait_filed(d, n)
    return d, dropped


def test_a_read_only_drive_remounted_writable_is_synced_without_a_replug(tmp_path: Path, drives: Drives) -> None:
    d, dropped = start(tmp_path, 20, 20_000)
    try:
        image = register(d, drives, tmp_path, "safe1")
        image.attach()
        mp = image.mount(tmp_path / "media" / "safe1", read_only=True)
        assert d.wait_event("drive.sync_stopped", timeout=60, drive="safe1")["state"] == "read_only"
        st = wait_until(lambda: (s := drive_status(d, "safe1"))["problem"] and s, 10, "problem")
        assert "read-only" in st["problem"] and any("read-only" in p for p in status(d)[1]["problems"])
        clock = Stopwatch()
        run("mount", "-o", "remount,rw", str(mp))
        synced = d.wait_event("drive.synced", timeout=60, drive="safe1")
        assert synced["copied"] == 20 and synced["failed"] == 0
        figure("drive mounted read-only, then remounted writable", files=20, faults=1, recovery_s=clock.seconds())
        st = wait_until(lambda: (s := drive_status(d, "safe1"))["state"] == "idle" and s, 10, "idle", d)
        assert st["problem"] is None and st["pending_files"] == 0
        nothing_lost(d, dropped, drives=[mp])
        no_traceback(d)
    finally:
        d.stop()


def test_a_full_drive_given_space_is_synced_at_its_next_plug_in(tmp_path: Path, drives: Drives) -> None:
    d, dropped = start(tmp_path, 20, 200_000)
    try:
        # Filled before it is registered (so no sync races the filling), but for room for
        # naskahd's token and a few letters.
        image = drives.make("ext4", size_mb=16)
        image.attach()
        mp = image.mount(tmp_path / "media" / "safe1")
        filler = fill(mp, "someone else's file")
        os.truncate(filler, filler.stat().st_size - (1 << 20))
        out = cli(d.config, "drive", "register", str(mp), "--name", "safe1")
        assert out.returncode == 0, out.stderr
        image.unplug()
        image.attach()
        mp = image.mount(tmp_path / "media" / "safe1")
        d.wait_event("drive.sync_stopped", timeout=60, drive="safe1", state="full")
        st = wait_until(lambda: (s := drive_status(d, "safe1"))["problem"] and s, 10, "problem")
        assert "is full" in st["problem"] and st["pending_files"] > 0
        assert not [p for p in mp.rglob(".naskahd-tmp-*")], "a partial copy left on the full drive"
        nothing_lost(d, dropped, drives=[mp])  # what was recorded as backed up is on the drive
        (mp / filler.name).unlink()  # the person makes room, and plugs it in again
        image.unplug()
        clock = Stopwatch()
        image.attach()
        mp = image.mount(tmp_path / "media" / "safe1")
        synced = d.wait_event("drive.synced", timeout=60, drive="safe1")
        assert synced["failed"] == 0
        figure("drive full, room made, plugged in again", files=20, faults=1, recovery_s=clock.seconds())
        st = wait_until(lambda: (s := drive_status(d, "safe1"))["state"] == "idle" and s, 10, "idle", d)
        assert st["problem"] is None and st["pending_files"] == 0
        nothing_lost(d, dropped, drives=[mp])
        no_traceback(d)
    finally:
        d.stop()
