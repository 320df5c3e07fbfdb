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

Where the images live (``--backing``, default both, in turn): ``disk``, files on the host's
disk (what an office's USB drive is closer to; the host disk's flush rate drifts widely on a
shared machine), and ``tmpfs``, files on /dev/shm, so that a ``syncfs`` costs the kernel's
work and not the host disk's flush: the software's own cost. naskahd and rsync always get
the same kind of image in one comparison. ``--repeat N`` runs the full-sync comparison N
times per backing; ``--code DIR`` imports naskahd from another checkout (old against new,
interleaved in one run: ``--code DIR`` runs both this checkout and DIR in turn).

Usage: python bench/bench_sync.py [--files 20000] [--size-kib 20] [--big 200000] [--exfat]
       [--backing disk|tmpfs]... [--repeat N] [--code DIR] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
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
# The naskahd imported; a sync child of ``--code DIR`` is given DIR's (BENCH_SYNC_DAEMON).
DAEMON = Path(os.environ.get("BENCH_SYNC_DAEMON") or ROOT / "daemon")
sys.path.insert(0, str(DAEMON))
SHM = Path("/dev/shm")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(*cmd: str) -> str:
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True).stdout


class Images:
    """Loop-mounted filesystem images: the image files in ``image_dir`` (the host's disk or
    a tmpfs), the mount points in ``folder``."""

    def __init__(self, folder: Path, image_dir: Path | None = None) -> None:
        self.folder, self.made, self.mounts = folder, [], []
        self.image_dir = image_dir or folder

    def make(self, fstype: str, size_mb: int, name: str) -> Path:
        base, n = name, 1
        while (self.image_dir / f"{name}.img").exists() or (self.folder / f"mnt-{name}").exists():
            n += 1
            name = f"{base}-{n}"
        img = self.image_dir / f"{name}.img"
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
            if subprocess.run(["umount", str(mp)], capture_output=True).returncode == 0:
                mp.rmdir()
        for img in self.made:
            for line in subprocess.run(["losetup", "-j", str(img)], capture_output=True, text=True).stdout.splitlines():
                subprocess.run(["losetup", "-d", line.split(":", 1)[0]], capture_output=True)
            img.unlink(missing_ok=True)  # a tmpfs image is memory
        self.made, self.mounts = [], []


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
                          env={**os.environ, "PYTHONPATH": str(DAEMON)})


STAGES = {  # module: functions timed with --stages (those a checkout lacks are skipped)
    "naskahd.drives.batches": ("_write_batch", "_flush", "_rename_batch", "_verify", "_record"),
    "naskahd.drives.sync": ("_record", "_write_metadata", "_snapshot_age", "check_identity", "find_mount", "_copy_missing"),
    "naskahd.drives.plan": ("missing", "taken_paths", "assign", "pending"),
    "naskahd.drives.recording": ("record", "manifest_lines"),
    "naskahd.register.db": ("snapshot",),
}


def _time_stages() -> dict[str, list[float]]:
    """Wrap the sync's stages with timers: {stage: [calls, wall s, CPU s of the calling thread]}."""
    import functools
    import importlib
    import inspect

    timers: dict[str, list[float]] = {}
    for modname, names in STAGES.items():
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        for name in names:
            f = getattr(mod, name, None)
            if f is None or inspect.isgeneratorfunction(f):
                continue

            def wrapped(*a: Any, _f: Any = f, _key: str = f"{modname.rpartition('.')[2]}.{name}", **k: Any) -> Any:
                w, c = time.perf_counter(), time.thread_time()
                try:
                    return _f(*a, **k)
                finally:
                    e = timers.setdefault(_key, [0, 0.0, 0.0])
                    e[0] += 1
                    e[1] += time.perf_counter() - w
                    e[2] += time.thread_time() - c

            setattr(mod, name, functools.wraps(f)(wrapped))
    return timers


def child_sync(cfg_path: str, name: str, times: int, stages: bool) -> int:
    """In a child process (``--code``'s naskahd on its path): sync ``name`` ``times`` times,
    print one JSON line per run: wall and CPU seconds (process: all threads), stage timers."""
    import resource

    from naskahd import config
    from naskahd.drives import sync
    from naskahd.register import open_register

    timers = _time_stages() if stages else {}
    cfg = config.load(cfg_path)
    sessions = open_register(cfg.database_url)
    for _k in range(times):
        timers.clear()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t, c = time.perf_counter(), time.process_time()
        report = sync.sync_drive(cfg, sessions, name, wait=True)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        print(json.dumps({"wall": wall, "cpu": cpu, "user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime,
                          "ok": report.ok, "copied": report.copied, "state": report.state, "message": report.message,
                          "stages": {k: [v[0], round(v[1], 4), round(v[2], 4)] for k, v in sorted(timers.items())}}), flush=True)
    return 0


def timed_sync(cfg_path: Path, name: str, code: Path | None = None, times: int = 1, stages: bool = False) -> list[dict[str, Any]]:
    """Sync in a child process with ``code``'s naskahd (default this checkout's): one result
    per run (``wall``, ``cpu``, ``copied``, ``ok``...), the child's start-up not counted."""
    daemon = (code / "daemon") if code else DAEMON
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-sync", str(cfg_path), name, "--times", str(times)]
    if stages:
        cmd.append("--stages")
    out = subprocess.run(cmd, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(daemon), "BENCH_SYNC_DAEMON": str(daemon)})
    if out.returncode != 0:
        raise RuntimeError(f"sync child failed: {out.stderr[-2000:]}")
    runs = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    for r in runs:
        r["load"] = round(os.getloadavg()[0], 1)
    return runs


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_rsync(src: Path, dst: Path, flush: bool = False) -> dict[str, float]:
    """``rsync -a``; with ``flush``, followed by ``sync -f`` of the target (for reference:
    the same bytes made durable, still without reading anything back). Wall and CPU seconds
    (rsync's processes: sender, receiver)."""
    t, c = time.perf_counter(), _children_cpu()
    run("rsync", "-a", f"{src}/", f"{dst}/")
    if flush:
        run("sync", "-f", str(dst))
    return {"wall": time.perf_counter() - t, "cpu": _children_cpu() - c, "load": round(os.getloadavg()[0], 1)}


_DRIVES = itertools.count(1)  # a new drive name per image


def _r(x: float) -> float:
    return round(x, 3)


def bench_full(tmp: Path, image_dir: Path, cfg: Path, fstype: str, total_bytes: int, n: int, size_mb: int,
               codes: list[Path | None], rnd: int, stages: bool) -> dict[str, Any]:
    """One round: ``rsync -a`` onto a fresh image, then each code's full sync onto its own
    fresh image, then ``rsync -a`` again (the disk drifts), then ``rsync -a`` + ``sync -f``.
    Images are removed at the end of the round (their unflushed pages with them)."""
    archive = cfg.parent / "archive"
    images = Images(tmp, image_dir)
    try:
        # Both start with the archive's pages hot (read once), the targets fresh.
        run("cat", *[str(p) for p in list(archive.rglob("*.pdf"))[:1]])
        rs = images.make(fstype, size_mb, f"rsync-{fstype}")
        rsync_runs = [timed_rsync(archive, rs)]
        syncs = []
        for k, code in enumerate(codes):
            mp = images.make(fstype, size_mb, f"naskahd-{fstype}")
            name = f"b{fstype}{next(_DRIVES)}"
            daemon = (code / "daemon") if code else DAEMON
            out = subprocess.run([sys.executable, "-m", "naskahd", "--config", str(cfg), "drive", "register", str(mp), "--name", name],
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(daemon)})
            assert out.returncode == 0, out.stderr
            first = timed_sync(cfg, name, code, stages=stages)[0]
            assert first["ok"] and first["copied"] == n, first
            entry: dict[str, Any] = {"code": str(code) if code else "this checkout", "wall_s": _r(first["wall"]),
                                     "cpu_s": _r(first["cpu"]), "user_s": _r(first["user"]), "sys_s": _r(first["sys"]),
                                     "load": first["load"]}
            if stages:
                entry["stages"] = first["stages"]
            if fstype == "ext4":
                none = timed_sync(cfg, name, code)[0]
                assert none["ok"] and none["copied"] == 0, none
                entry["nochange_s"] = _r(none["wall"])
            syncs.append(entry)
        rsync_runs.append(timed_rsync(archive, images.make(fstype, size_mb, f"rsync2-{fstype}")))
        flushed = timed_rsync(archive, images.make(fstype, size_mb, f"rsync3-{fstype}"), flush=True)
        nochange_rsync = timed_rsync(archive, rs)["wall"] if fstype == "ext4" else None
    finally:
        images.cleanup()
    best = min(r["wall"] for r in rsync_runs)
    for e in syncs:
        e["mb_s"] = round(total_bytes / e["wall_s"] / 1e6, 2)
        e["ratio"] = round(best / e["wall_s"], 3)
    result = {"fstype": fstype, "files": n, "bytes": total_bytes, "round": rnd, "syncs": syncs,
              "rsync_s": _r(best), "rsync_runs_s": [_r(r["wall"]) for r in rsync_runs],
              "rsync_cpu_s": _r(min(r["cpu"] for r in rsync_runs)), "rsync_mb_s": round(total_bytes / best / 1e6, 2),
              "rsync_then_sync_f_s": _r(flushed["wall"]), "load": [r["load"] for r in rsync_runs]}
    if nochange_rsync is not None:
        result["nochange_rsync_s"] = _r(nochange_rsync)
    return result


def bench_big(tmp: Path, image_dir: Path, big: int, stages: bool) -> dict[str, Any]:
    """200,000 registered documents, all recorded as on the drive (rows only, no files)."""
    from sqlalchemy import insert, select

    from naskahd import config
    from naskahd.register import Copy, Document, Drive, open_register

    images = Images(tmp, image_dir)
    try:
        cfg_path = write_tree(tmp / "big")
        populate(cfg_path, big, 1000, with_files=False)
        mp = images.make("ext4", 1024, "big")  # room for two register snapshots (the old one and its replacement)
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
        # The drive needs its snapshot once (a first sync writes it); then nothing new, 3 times
        # in one process (as the daemon's drives thread syncs: warm), then 100 new.
        first, *none = timed_sync(cfg_path, "big", times=4, stages=stages)
        assert first["copied"] == 0, first
        populate(cfg_path, 100, 20 * 1024, start=big + 1)
        new = timed_sync(cfg_path, "big", stages=stages)[0]
        assert new["ok"] and new["copied"] == 100, new
        # 100 new again, the drive's register snapshot now two hours old: this sync also
        # replaces it (sync.SNAPSHOT_EVERY), as the first sync of a day does.
        populate(cfg_path, 100, 20 * 1024, start=big + 101)
        snap = mp / "naskah" / ".naskahd" / "register.sqlite3"
        old = time.time() - 7200
        os.utime(snap, (old, old))
        new_snap = timed_sync(cfg_path, "big", stages=stages)[0]
        assert new_snap["ok"] and new_snap["copied"] == 100, new_snap
        assert snap.stat().st_mtime > old + 3600, "the snapshot was not replaced"
    finally:
        images.cleanup()
    best = min(none, key=lambda r: r["wall"])
    out = {"registered": big, "first_s": _r(first["wall"]), "nothing_new_s": _r(best["wall"]),
           "nothing_new_runs_s": [_r(r["wall"]) for r in none], "nothing_new_cpu_s": _r(best["cpu"]),
           "new_100_s": _r(new["wall"]), "new_100_cpu_s": _r(new["cpu"]), "load": new["load"],
           "new_100_with_snapshot_s": _r(new_snap["wall"]), "new_100_with_snapshot_cpu_s": _r(new_snap["cpu"]),
           "register_mb": round(cfg.register_path.stat().st_size / 1e6, 1)}
    if stages:
        out.update(nothing_new_stages=best["stages"], new_100_stages=new["stages"], new_100_with_snapshot_stages=new_snap["stages"])
    return out


def bench_latency_during_sync(tmp: Path, images: Images, n: int, size: int, settle: float) -> dict[str, Any]:
    cfg = write_tree(tmp / "lat", settle=settle)
    populate(cfg, n, size)
    mp = images.make("ext4", max(256, n * size * 2 // (1 << 20) + 128), "lat")
    assert naskahd(cfg, "drive", "register", str(mp), "--name", "lat").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "naskahd", "--config", str(cfg), "run", "--log-format", "json"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(DAEMON)})
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


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--size-kib", type=int, default=20)
    ap.add_argument("--big", type=int, default=200_000)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--exfat", action="store_true")
    ap.add_argument("--backing", action="append", choices=("disk", "tmpfs"),
                    help="where the image files are: the host's disk, or a tmpfs (/dev/shm); default both")
    ap.add_argument("--repeat", type=int, default=1, help="full-sync rounds per backing")
    ap.add_argument("--code", type=Path, action="append", default=[],
                    help="also sync with the naskahd of this checkout, interleaved in each round")
    ap.add_argument("--stages", action="store_true", help="time the sync's stages (wall and CPU per stage)")
    ap.add_argument("--skip", action="append", default=[], help="full, big, latency")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child-sync", nargs=2, metavar=("CONFIG", "DRIVE"), help=argparse.SUPPRESS)
    ap.add_argument("--times", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_sync:
        import naskahd

        assert Path(naskahd.__file__).resolve().is_relative_to(DAEMON.resolve()), (naskahd.__file__, DAEMON)
        return child_sync(args.child_sync[0], args.child_sync[1], args.times, args.stages)
    if os.geteuid() != 0:
        print("bench_sync: needs root (loop devices)", file=sys.stderr)
        return 2
    backings = args.backing or ["disk", "tmpfs"]
    codes: list[Path | None] = [None, *[c.resolve() for c in args.code]]
    size = args.size_kib * 1024
    results: dict[str, Any] = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                               "load_at_start": [round(x, 1) for x in os.getloadavg()], "cpus": os.cpu_count()}
    shm = Path(tempfile.mkdtemp(prefix="bench-sync-", dir=SHM)) if "tmpfs" in backings else None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-sync-") as t:
            tmp = Path(t)
            image_dirs = {"disk": tmp, "tmpfs": shm}
            total = args.files * size
            size_mb = total * 2 // (1 << 20) + 256
            if "full" not in args.skip:
                cfg = write_tree(tmp / "full")
                log(f"populating {args.files} × {args.size_kib} KiB")
                populate(cfg, args.files, size)
                fstypes = ["ext4", "exfat"] if args.exfat else ["ext4"]
                for rnd in range(args.repeat):
                    for backing in backings:
                        for fstype in fstypes:
                            log(f"round {rnd + 1}: full sync onto {fstype} ({backing}) vs rsync -a")
                            r = bench_full(tmp, image_dirs[backing], cfg, fstype, total, args.files, size_mb, codes, rnd, args.stages)
                            results.setdefault(f"{fstype}_{backing}", []).append(r)
                            log(json.dumps(r))
            if "big" not in args.skip:
                for backing in backings:
                    log(f"{args.big} registered documents ({backing})")
                    results[f"big_{backing}"] = bench_big(tmp / f"big-{backing}", image_dirs[backing], args.big, args.stages)
                    log(json.dumps(results[f"big_{backing}"]))
            if "latency" not in args.skip:
                log(f"filing latency while a full sync runs ({backings[0]})")
                images = Images(tmp, image_dirs[backings[0]])
                try:
                    results["latency"] = bench_latency_during_sync(tmp, images, args.files, size, args.settle)
                finally:
                    images.cleanup()
                results["latency"]["backing"] = backings[0]
                log(json.dumps(results["latency"]))
    finally:
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)
    results["load_at_end"] = [round(x, 1) for x in os.getloadavg()]
    checks = []
    for backing in backings:
        rounds = results.get(f"ext4_{backing}")
        if rounds:
            mine = [r["syncs"][0] for r in rounds]
            ratio = _median([m["ratio"] for m in mine])
            checks.append((f"full sync ≥ 0.8 × rsync -a throughput (ext4, {backing}; median of {len(mine)})",
                           f"{ratio} × (naskahd {_median([m['wall_s'] for m in mine])} s, CPU {_median([m['cpu_s'] for m in mine])} s; "
                           f"rsync {_median([r['rsync_s'] for r in rounds])} s, CPU {_median([r['rsync_cpu_s'] for r in rounds])} s)",
                           ratio >= 0.8))
            nc, ncr = _median([m["nochange_s"] for m in mine]), _median([r["nochange_rsync_s"] for r in rounds])
            checks.append((f"no-change sync ≤ no-change rsync -a ({backing})", f"{nc} s vs {ncr} s", nc <= ncr))
        for x in results.get(f"exfat_{backing}", []):
            checks.append((f"exFAT (FUSE, {backing}): full sync vs rsync -a (reported)",
                           f"{x['syncs'][0]['wall_s']} s vs {x['rsync_s']} s ({x['syncs'][0]['ratio']} ×)", True))
        b = results.get(f"big_{backing}")
        if b:
            checks.append((f"{b['registered']} registered, nothing new ≤ 0.2 s ({backing})", f"{b['nothing_new_s']} s", b["nothing_new_s"] <= 0.2))
            checks.append((f"{b['registered']} registered, 100 new ≤ 1 s ({backing})", f"{b['new_100_s']} s", b["new_100_s"] <= 1.0))
            checks.append((f"{b['registered']} registered, 100 new and the register snapshot replaced ({backing}; reported)",
                           f"{b['new_100_with_snapshot_s']} s ({b['register_mb']} MB register)", True))
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
