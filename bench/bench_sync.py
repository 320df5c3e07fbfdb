#!/usr/bin/env python3
"""Backup-sync benchmark (issue 17): naskahd's verified sync against ``rsync -a``, same run.

Needs root (loop devices, mounts), rsync, mkfs.ext4, and for --exfat mkfs.exfat and
mount.exfat-fuse. Everything happens in a fresh temporary folder, removed afterwards;
every loop device and mount made here is undone.

1. An archive of N files × S KiB (default 20,000 × 20 KiB) with its register, written
   directly through naskahd.register (this benchmarks the sync, not filing).
2. Full sync onto a fresh loop-mounted ext4 image, *including* the flushes (syncfs) and
   the read-back past the page cache, vs ``rsync -a`` of the same tree onto another fresh
   image of the same size (rsync neither flushes nor verifies). Target: naskahd's
   throughput ≥ 0.8 × rsync's. Wall and CPU seconds of both (the CPU time is the steadier
   figure on a shared machine).
3. No-change sync vs no-change ``rsync -a``. Target: naskahd ≤ rsync.
4. A register of --big (200,000) documents all on the drive: nothing new ≤ 0.2 s, and
   100 new ≤ 1 s (each includes the drive's identity check and planning; 100 new also the
   register snapshot onto the drive).
5. Filing latency p50 while a full sync runs: the real daemon with the drive mounted,
   40 scans dropped one every 0.25 s during the sync. Target: ≤ settle + 0.5 s.
6. (--exfat) the same full sync onto exFAT (FUSE) beside ``rsync -a`` onto exFAT.

Usage: python bench/bench_sync.py [--files 20000] [--size-kib 20] [--big 200000] [--exfat] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "daemon"))


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(*cmd: str) -> str:
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True).stdout


class Images:
    def __init__(self, folder: Path) -> None:
        self.folder, self.made, self.mounts = folder, [], []

    def make(self, fstype: str, size_mb: int, name: str) -> Path:
        img = self.folder / f"{name}.img"
        with open(img, "wb") as f:
            f.truncate(size_mb << 20)
        if fstype == "ext4":
            run("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(img))
        else:
            run("mkfs.exfat", str(img))
        loop = run("losetup", "-f", "--show", str(img)).strip()
        self.made.append(img)
        subprocess.run(["udevadm", "settle", "-t", "30"], capture_output=True)
        mp = self.folder / f"mnt-{name}"
        mp.mkdir()
        if fstype == "ext4":
            run("mount", "-t", "ext4", loop, str(mp))
        else:
            run("mount.exfat-fuse", loop, str(mp))
        self.mounts.append(mp)
        return mp

    def cleanup(self) -> None:
        for mp in reversed(self.mounts):
            subprocess.run(["umount", str(mp)], capture_output=True)
        for img in self.made:
            for line in subprocess.run(["losetup", "-j", str(img)], capture_output=True, text=True).stdout.splitlines():
                subprocess.run(["losetup", "-d", line.split(":", 1)[0]], capture_output=True)


def write_tree(root: Path, settle: float = 2.0) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import write_config

    return write_config(root, settle=settle)


def populate(cfg_path: Path, n: int, size: int, start: int = 1, with_files: bool = True) -> None:
    """``n`` filed documents (files in the archive + register rows), numbers from ``start``."""
    from sqlalchemy import insert

    from naskahd import config
    from naskahd.register import AgendaCounter, Document, open_register

    cfg = config.load(str(cfg_path))
    sessions = open_register(cfg.database_url)
    now = dt.datetime.now(dt.UTC)
    folder = cfg.archive / "inbound" / "2026" / "12"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(start, start + n):
        stem = f"{i:04d}-M-2026"
        name = f"{stem}_scan {i}.pdf"
        data = (f"%PDF-1.4 bench {i} ".encode() * (size // 16 + 1))[:size]
        if with_files:
            (folder / name).write_bytes(data)
        rows.append(dict(agenda=f"{i:04d}/M/2026", category="inbound", year=2026, number=i, original_name=f"scan {i}.pdf",
                         source_relpath=f"masuk/scan {i}.pdf".encode(), archive_path=f"inbound/2026/12/{name}", size=size,
                         sha256=hashlib.sha256(data).hexdigest(), received_at=now, state="filed"))
    with sessions.begin() as s:
        for k in range(0, len(rows), 5000):
            s.execute(insert(Document.__table__), rows[k:k + 5000])
        counter = s.get(AgendaCounter, ("inbound", 2026))
        if counter is None:
            s.add(AgendaCounter(category="inbound", year=2026, last_number=start + n - 1))
        else:
            counter.last_number = start + n - 1


def naskahd(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "naskahd", "--config", str(cfg), *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "daemon")})


def timed_sync(cfg_path: Path, name: str) -> tuple[float, Any]:
    from naskahd import config
    from naskahd.drives import sync
    from naskahd.register import open_register

    cfg = config.load(str(cfg_path))
    sessions = open_register(cfg.database_url)
    t, c = time.perf_counter(), time.process_time()
    report = sync.sync_drive(cfg, sessions, name, wait=True)
    CPU["naskahd"] = time.process_time() - c  # all of its threads
    return time.perf_counter() - t, report


CPU: dict[str, float] = {}  # CPU seconds of the last timed run of each


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime



def timed_rsync(src: Path, dst: Path, flush: bool = False) -> float:
    """``rsync -a``; with ``flush``, followed by ``sync -f`` of the target (for reference:
    the same bytes made durable, still without reading anything back)."""
    t, c = time.perf_counter(), _children_cpu()
    run("rsync", "-a", f"{src}/", f"{dst}/")
    if flush:
        run("sync", "-f", str(dst))
    CPU["rsync"] = _children_cpu() - c  # rsync's processes (sender, receiver)
    return time.perf_counter() - t


def bench_full(tmp: Path, images: Images, cfg: Path, fstype: str, total_bytes: int, n: int, size_mb: int) -> dict[str, Any]:
    archive = cfg.parent / "archive"
    mp = images.make(fstype, size_mb, f"naskahd-{fstype}")
    out = naskahd(cfg, "drive", "register", str(mp), "--name", f"b{fstype}")
    assert out.returncode == 0, out.stderr
    rs = images.make(fstype, size_mb, f"rsync-{fstype}")
    # Both start with the archive's pages hot (read once), the targets fresh.
    run("cat", *[str(p) for p in list(archive.rglob("*.pdf"))[:1]])
    t_rsync = timed_rsync(archive, rs)
    cpu_rsync = CPU["rsync"]
    t_sync, report = timed_sync(cfg, f"b{fstype}")
    assert report.ok and report.copied == n, report
    cpu_sync = CPU["naskahd"]
    t_rsync2 = timed_rsync(archive, images.make(fstype, size_mb, f"rsync2-{fstype}"))  # again, after: the disk drifts
    cpu_rsync = min(cpu_rsync, CPU["rsync"])
    t_rsync_flush = timed_rsync(archive, images.make(fstype, size_mb, f"rsync3-{fstype}"), flush=True)
    result = {
        "fstype": fstype, "files": n, "bytes": total_bytes,
        "naskahd_s": round(t_sync, 3), "rsync_s": round(min(t_rsync, t_rsync2), 3), "rsync_runs_s": [round(t_rsync, 3), round(t_rsync2, 3)],
        "naskahd_mb_s": round(total_bytes / t_sync / 1e6, 2), "rsync_mb_s": round(total_bytes / min(t_rsync, t_rsync2) / 1e6, 2),
    }
    result["ratio"] = round(min(t_rsync, t_rsync2) / t_sync, 3)
    result.update(naskahd_cpu_s=round(cpu_sync, 3), rsync_cpu_s=round(cpu_rsync, 3))
    result["rsync_then_sync_f_s"] = round(t_rsync_flush, 3)
    if fstype == "ext4":
        t_none, rep = timed_sync(cfg, f"b{fstype}")
        assert rep.ok and rep.copied == 0
        t_rs_none = timed_rsync(archive, rs)
        result.update(nochange_naskahd_s=round(t_none, 3), nochange_rsync_s=round(t_rs_none, 3))
    return result


def bench_big(tmp: Path, images: Images, big: int) -> dict[str, Any]:
    """200,000 registered documents, all recorded as on the drive (rows only, no files)."""
    from sqlalchemy import insert, select

    from naskahd import config
    from naskahd.register import Copy, Document, Drive, open_register

    cfg_path = write_tree(tmp / "big")
    populate(cfg_path, big, 1000, with_files=False)
    mp = images.make("ext4", 256, "big")
    assert naskahd(cfg_path, "drive", "register", str(mp), "--name", "big").returncode == 0
    cfg = config.load(str(cfg_path))
    sessions = open_register(cfg.database_url)
    now = dt.datetime.now(dt.UTC)
    with sessions.begin() as s:
        drive_id = s.scalar(select(Drive.id).where(Drive.name == "big"))
        rows = [dict(drive_id=drive_id, document_id=i, drive_path=p, size=sz, sha256=h, verified_at=now)
                for i, p, sz, h in s.execute(select(Document.id, Document.archive_path, Document.size, Document.sha256))]
        for k in range(0, len(rows), 5000):
            s.execute(insert(Copy.__table__), rows[k:k + 5000])
    # the drive needs its snapshot once (a first sync writes it)
    t0, rep = timed_sync(cfg_path, "big")
    assert rep.copied == 0, rep
    t_none = min(timed_sync(cfg_path, "big")[0] for _ in range(3))
    populate(cfg_path, 100, 20 * 1024, start=big + 1)
    t_new, rep = timed_sync(cfg_path, "big")
    assert rep.ok and rep.copied == 100, rep
    return {"registered": big, "first_s": round(t0, 3), "nothing_new_s": round(t_none, 3), "new_100_s": round(t_new, 3),
            "register_mb": round(cfg.register_path.stat().st_size / 1e6, 1)}


def bench_latency_during_sync(tmp: Path, images: Images, n: int, size: int, settle: float) -> dict[str, Any]:
    cfg = write_tree(tmp / "lat", settle=settle)
    populate(cfg, n, size)
    mp = images.make("ext4", max(256, n * size * 2 // (1 << 20) + 128), "lat")
    assert naskahd(cfg, "drive", "register", str(mp), "--name", "lat").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "naskahd", "--config", str(cfg), "run", "--log-format", "json"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT / "daemon")})
    events: list[dict[str, Any]] = []

    def reader() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            try:
                events.append(json.loads(line))
            except ValueError:
                pass

    threading.Thread(target=reader, daemon=True).start()
    try:
        def wait(name: str, timeout: float = 600) -> dict[str, Any]:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                for e in list(events):
                    if e.get("event") == name:
                        return e
                time.sleep(0.02)
            raise RuntimeError(f"no {name}")

        wait("drive.sync_started")
        drop = cfg.parent / "drop" / "masuk"
        dropped: dict[str, float] = {}
        for i in range(40):
            name = f"during {i}.pdf"
            (drop / (name + ".part")).write_bytes(os.urandom(20_000))
            os.rename(drop / (name + ".part"), drop / name)
            dropped[name] = time.time()
            time.sleep(0.25)
        end = time.monotonic() + 120
        while time.monotonic() < end and len([e for e in events if e.get("event") == "document.registered"]) < 40:
            time.sleep(0.05)
        synced = [e for e in events if e.get("event") == "drive.synced"]
        registered = {e["original_name"] if "original_name" in e else e.get("path", "").rpartition("/")[2]: e for e in events if e.get("event") == "document.registered"}
        lat = []
        for name, t in dropped.items():
            e = registered.get(name)
            if e is not None:
                lat.append(dt.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp() - t)
        still_syncing = not synced or dt.datetime.fromisoformat(synced[0]["timestamp"].replace("Z", "+00:00")).timestamp() > max(dropped.values())
        wait("drive.synced")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {"settle_s": settle, "dropped": 40, "registered": len(lat), "p50_s": round(statistics.median(lat), 3) if lat else None,
            "max_s": round(max(lat), 3) if lat else None, "sync_ran_throughout": still_syncing, "archive_files": n}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--size-kib", type=int, default=20)
    ap.add_argument("--big", type=int, default=200_000)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--exfat", action="store_true")
    ap.add_argument("--skip", action="append", default=[], help="full, big, latency")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_sync: needs root (loop devices)", file=sys.stderr)
        return 2
    size = args.size_kib * 1024
    results: dict[str, Any] = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as t:
        tmp = Path(t)
        images = Images(tmp)
        try:
            total = args.files * size
            size_mb = total * 2 // (1 << 20) + 256
            if "full" not in args.skip:
                cfg = write_tree(tmp / "full")
                log(f"populating {args.files} × {args.size_kib} KiB")
                populate(cfg, args.files, size)
                log("full sync onto ext4 vs rsync -a")
                results["ext4"] = bench_full(tmp, images, cfg, "ext4", total, args.files, size_mb)
                log(json.dumps(results["ext4"]))
                if args.exfat:
                    log("full sync onto exFAT (FUSE) vs rsync -a")
                    results["exfat"] = bench_full(tmp, images, cfg, "exfat", total, args.files, size_mb)
                    log(json.dumps(results["exfat"]))
            if "big" not in args.skip:
                log(f"{args.big} registered documents")
                results["big"] = bench_big(tmp, images, args.big)
                log(json.dumps(results["big"]))
            if "latency" not in args.skip:
                log("filing latency while a full sync runs")
                results["latency"] = bench_latency_during_sync(tmp, images, args.files, size, args.settle)
                log(json.dumps(results["latency"]))
        finally:
            images.cleanup()
    checks = []
    if "ext4" in results:
        e = results["ext4"]
        checks.append(("full sync ≥ 0.8 × rsync -a throughput (ext4)", f"{e['ratio']} ×", e["ratio"] >= 0.8))
        checks.append(("no-change sync ≤ no-change rsync -a", f"{e['nochange_naskahd_s']} s vs {e['nochange_rsync_s']} s", e["nochange_naskahd_s"] <= e["nochange_rsync_s"]))
    if "exfat" in results:
        x = results["exfat"]
        checks.append(("exFAT (FUSE): full sync vs rsync -a (reported)", f"{x['naskahd_s']} s vs {x['rsync_s']} s ({x['ratio']} ×)", True))
    if "big" in results:
        b = results["big"]
        checks.append((f"{b['registered']} registered, nothing new ≤ 0.2 s", f"{b['nothing_new_s']} s", b["nothing_new_s"] <= 0.2))
        checks.append((f"{b['registered']} registered, 100 new ≤ 1 s", f"{b['new_100_s']} s", b["new_100_s"] <= 1.0))
    if "latency" in results:
        lt = results["latency"]
        ok = lt["p50_s"] is not None and lt["p50_s"] <= args.settle + 0.5 and lt["registered"] == 40
        checks.append((f"filing p50 during a full sync ≤ settle + 0.5 s = {args.settle + 0.5} s", f"{lt['p50_s']} s (max {lt['max_s']})", ok))
    results["checks"] = [{"target": c, "measured": m, "pass": p} for c, m, p in checks]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for c, m, p in checks:
            print(f"{'PASS' if p else 'MISS'}  {c}: {m}")
    return 0 if all(p for _c, _m, p in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
