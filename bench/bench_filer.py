#!/usr/bin/env python3
"""The filing path's serial stage alone: Filer.begin/finish over 2,000 files × 20 KB in batches
of 64, as the daemon's main thread does them (the next batch begun before this one is
finished); prints the main thread's CPU time per file (``time.thread_time``), which other
processes' load hardly changes. No daemon, no watcher, no settle wait.

Usage: [PYTHONPATH=<checkout>/daemon] python bench/bench_filer.py
(an older checkout first on PYTHONPATH measures that code; docs/benchmarks.md)
"""
import os, sys, time, tempfile, subprocess, shutil
from pathlib import Path
from naskahd import config as config_mod
try:
    from naskahd import installation
except ImportError:
    installation = None
from naskahd.filing import Filer, Ready
from naskahd.settle import Signature
N, B = 2000, 64
base = Path(tempfile.mkdtemp(prefix="wt2h-"))
subprocess.run([sys.executable, "-m", "naskahd", "init", "--root", str(base)], check=True, capture_output=True)
cfg = config_mod.load(str(base / "naskahd.toml"))
sessions = installation.open_checked(cfg, create=True) if installation is not None else __import__("naskahd.register", fromlist=["open_register"]).open_register(cfg.database_url)
drop = cfg.drop / "masuk"; drop.mkdir(parents=True, exist_ok=True)
items = []
for i in range(N):
    p = drop / f"surat-{i:05d}.pdf"
    p.write_bytes(os.urandom(20480))
    items.append(Ready(f"masuk/{p.name}", "inbound", Signature.of(os.lstat(p))))
filer = Filer(cfg, sessions, [])
t0, c0 = time.perf_counter(), time.thread_time()
pending = None
for k in range(0, N, B):
    prev, pending = pending, filer.begin(items[k:k + B])
    if prev is not None:
        filer.finish(prev)
filer.finish(pending)
c1, t1 = time.thread_time(), time.perf_counter()
filer.close()
left = len(list(drop.iterdir()))
print(f"{1e3 * (c1 - c0) / N:.3f} ms main-thread CPU/file, {t1 - t0:.2f} s wall, left {left}")
shutil.rmtree(base, ignore_errors=True)
