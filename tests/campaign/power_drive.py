"""The power-loss campaign during syncs (issue 22; ``power.py`` for the rest): the backup
drive is itself on powerfs, so register and drive lose power together, mid-sync."""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

from campaign import invariants, workload
from campaign.harness import health
from campaign.power import Cut, Point, PowerTree, Result, _check_at_cut, _settle

DRIVE_POINTS = (
    Point("write", "/drive.img", "before", "drive: a block written"),
    Point("fsync", "/drive.img", "before", "drive: a flush"),
    Point("fsync", "/drive.img", "after", "drive: flushed"),
    Point("fsync", "/state/register.sqlite3-wal", "after", "drive: a register commit during the sync"),
)


def run_drive(root: Path, *, seed: int, cuts: int, files: int, timeout: float = 120) -> Result:
    """Power cuts during a sync: the backup drive is an ext4 image *on powerfs* behind a
    loop device (the loop driver turns the drive's cache flushes into fsyncs of the image),
    so the drive loses what was not flushed when the register loses what was not committed.
    After each cut: the loop device and its mount are torn down, powerfs remounted, the
    drive attached and mounted again (ext4 replays its journal), the daemon restarted; no
    copy may be recorded that the drive does not hold, and the next sync completes."""
    import drives_fixtures as dfx
    from conftest import naskahd_cmd

    dfx.ensure_udevd()
    t0 = time.monotonic()
    rng = random.Random(seed)
    result = Result(seed)
    tree = PowerTree(root)
    bay = dfx.Drives(tree.power.mountpoint)
    dropped: dict[str, bytes | str] = {}
    markers: list[bytes] = []
    mp = root / "media" / "safe1"
    env = {**os.environ, "LANG": "C.UTF-8"}
    try:
        image = bay.make("ext4", size_mb=48, label="KANTOR")
        os.rename(image.path, tree.power.mountpoint / "drive.img")
        image.path = tree.power.mountpoint / "drive.img"
        tree.power.sync()
        tree.daemon.start()
        tree.daemon.wait_ready(60)
        image.attach()
        image.mount(mp)
        out = subprocess.run(naskahd_cmd("--config", str(tree.config), "drive", "register", str(mp), "--name", "safe1"),
                             capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        image.unplug()
        for r in range(1, cuts + 1):
            point = DRIVE_POINTS[(r - 1) % len(DRIVE_POINTS)] if r <= len(DRIVE_POINTS) else rng.choice(DRIVE_POINTS)
            items = workload.generate(seed * 1000 + r, files, prefix=f"d{r}-", big_share=0.0, exempt_share=0.3)
            for it in items:
                dropped.setdefault(it.relpath, it.data)
            markers += workload.markers(items)
            result.files += len(items)
            workload.drop(items, tree.drop, staging=tree.root / "staging", seed=seed + r).wait()
            _settle(tree, timeout)
            pid = tree.daemon.daemon_pid()
            assert pid is not None
            n = rng.randint(1, 2 if "register" in point.match else 4 if point.kind == "fsync" else 40)
            synced_before = len(tree.daemon.find("drive.synced"))
            started_before = len(tree.daemon.find("drive.sync_started"))
            image.attach()
            image.mount(mp)
            # armed once the sync has begun: the cut falls inside it, not in the mount's own writes
            tree.daemon.wait_for(lambda: len(tree.daemon.find("drive.sync_started")) > started_before, timeout)
            tree.power.arm(point.kind, n, match=point.match, phase=point.phase, victims=[pid])
            deadline = time.monotonic() + timeout
            while (tree.daemon.alive() and not tree.power.stats()["frozen"]
                   and len(tree.daemon.find("drive.synced")) == synced_before and time.monotonic() < deadline):
                time.sleep(0.05)
            fired = bool(tree.power.stats()["frozen"])
            if not fired:
                tree.power.cut(victims=[pid])
            hit = (tree.power.stats().get("fired") or {}).get("path", "") or "(idle)"
            tree.daemon.kill()
            image.umount(lazy=True)
            image.detach()
            tree.power.remount()
            image.attach()
            image.mount(mp)  # the daemon is down: nothing syncs yet
            at_cut = _check_at_cut(tree, dropped, markers)
            at_cut += invariants.check(tree.config, dropped=dropped, drives=[mp])
            started = time.monotonic()
            tree.daemon.start()  # finds the drive mounted at start-up and syncs it
            after: list[str] = []
            try:
                tree.daemon.wait_ready(60)
            except AssertionError as exc:
                after.append(f"lost: the daemon did not become READY after the cut: {str(exc)[-1500:]}")
            recovery = time.monotonic() - started
            if not after:
                if not tree.daemon.wait_for(lambda: tree.daemon.find("drive.synced"), timeout):
                    after.append(f"backup: no complete sync after the restart: {tree.daemon.log_tail(5)}")
                _settle(tree, timeout)
                after += invariants.check(tree.config, dropped=dropped, exempt_markers=markers, drives=[mp],
                                          logs=[tree.daemon.log_path], temp_dirs=[tree.daemon.tmp], settled=True)
                after += health(tree.config, review_expected=True)
            image.unplug()
            result.cuts.append(Cut(r, point.describe(n), fired, hit, at_cut, after, round(recovery, 2), len(items)))
    finally:
        tree.daemon.close()
        bay.cleanup()
        tree.power.unmount()
    result.wall_s = time.monotonic() - t0
    return result
