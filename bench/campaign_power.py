#!/usr/bin/env python3
"""The power-loss campaign, long run (issue 22; the short one is tests/test_power_loss.py).

The archive and the state folder on powerfs (tests/powerfs: a FUSE filesystem that keeps
only what was fsynced), the real daemon filing a seeded workload, the power cut at an
aimed call (tests/campaign/power.py POINTS, then drawn at random), remount, restart, every
invariant of tests/campaign/invariants.py checked on what the cut left and after recovery.
Plus power cuts during a new installation's first start, and during syncs to a backup
drive that is itself on powerfs (an ext4 image behind a loop device).

Needs root, /dev/fuse, fuse3, age-keygen, mkfs.ext4, losetup, systemd-udevd (started if
none runs), and the test extras (mfusepy). Everything
happens in a fresh temporary folder, removed afterwards (kept with --keep).

Usage: python bench/campaign_power.py [--seed 1] [--cuts 60] [--files 6] [--first-start 12] [--drive-cuts 8] [--json] [--keep]
Exit status 0 when no invariant was violated, 1 otherwise. The rounds are printed as JSON
lines as they come (with the call each cut hit); a failure replays with the same --seed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from campaign import power, power_drive  # noqa: E402
from powerfs import available  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cuts", type=int, default=60, help="power cuts on one growing tree")
    parser.add_argument("--files", type=int, default=6, help="new scans dropped in each round")
    parser.add_argument("--first-start", type=int, default=12, help="power cuts during a first start (fresh trees)")
    parser.add_argument("--drive-cuts", type=int, default=8, help="power cuts during a sync to a drive on powerfs")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object at the end")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    why = available()
    if why:
        print(f"campaign_power: {why}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="naskahd-power-"))
    try:
        main_run = power.run(tmp / "campaign", seed=args.seed, cuts=args.cuts, files=args.files, log=print)
        first = power.run_first_start(tmp / "first", seed=args.seed, cuts=args.first_start, files=3) if args.first_start else None
        drive = power_drive.run_drive(tmp / "drive", seed=args.seed, cuts=args.drive_cuts, files=8) if args.drive_cuts else None
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    figures = {"campaign": main_run.figures(), "first_start": first.figures() if first else None,
               "drive": drive.figures() if drive else None}
    violations = main_run.violations + (first.violations if first else []) + (drive.violations if drive else [])
    for v in violations:
        print("VIOLATION", v)
    if args.json:
        print(json.dumps(figures))
    else:
        for name, f in figures.items():
            if f:
                print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in f.items()))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
