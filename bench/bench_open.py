#!/usr/bin/env python3
"""What opening the register costs the commands that read it: ``naskahd status`` and
``naskahd list --json`` on a register of ROWS documents (default 300,000), wall and CPU time
of the command's process, each command run in turn for every code given, interleaved.

    .venv/bin/python bench/bench_open.py [--rows 300000] [--rounds 5] [CHECKOUT ...]

Each CHECKOUT is a tree holding ``daemon/naskahd`` (e.g. ``git archive REV daemon | tar -x -C
/tmp/old``); the current tree when none is given. The register is made once (with the current
code) and then only read. The daemon is not running (``status`` says so: exit 3).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "daemon"))
sys.path.insert(0, str(ROOT / "bench"))


def timed(code: Path, cfg: Path, *args: str) -> tuple[float, float, int]:
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "naskahd", "--config", str(cfg), *args], capture_output=True,
                         env={**os.environ, "PYTHONPATH": str(code / "daemon"), "LANGUAGE": "en"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), out.returncode


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=300_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("checkouts", nargs="*", type=Path)
    args = p.parse_args()
    codes = args.checkouts or [ROOT]
    from bench_sync import populate, write_tree

    with tempfile.TemporaryDirectory() as tmp:
        cfg = write_tree(Path(tmp) / "naskahd")
        populate(cfg, args.rows, 20_000, with_files=False)
        reg = Path(tmp) / "naskahd" / "state" / "register.sqlite3"
        print(f"{args.rows} rows, register {reg.stat().st_size / 1e6:.1f} MB; load average {os.getloadavg()[0]:.2f}")
        commands = {"status": ("status",), "status --json": ("status", "--json"), "list --json": ("list", "--json"),
                    # no rows to show (every document is inbound): the opening's cost alone
                    "list --json --category outbound": ("list", "--json", "--category", "outbound")}
        found: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _round in range(args.rounds):
            for name, cmd in commands.items():
                for code in codes:
                    wall, cpu, rc = timed(code, cfg, *cmd)
                    assert rc in (0, 1, 3), (code, cmd, rc)
                    found.setdefault((name, str(code)), []).append((wall, cpu))
        print(f"load average after {os.getloadavg()[0]:.2f}")
        print("| command | code | wall median (s) | CPU median (s) | runs |")
        print("|---|---|---|---|---|")
        for (name, code), runs in found.items():
            print(f"| {name} | {code} | {statistics.median(w for w, _c in runs):.3f} | "
                  f"{statistics.median(c for _w, c in runs):.3f} | {len(runs)} |")


if __name__ == "__main__":
    main()
