#!/usr/bin/env python3
"""The crash campaign's long form (issue 22): the real daemon SIGKILLed ≥ 300 times at aimed
and random moments, with a loop-mounted ext4 drive, invariants checked after every kill and
restart (tests/campaign/crash.py; the short form is tests/test_crash_campaign.py).

Needs root (loop devices, mounts, udev), strace, age, age-keygen, mkfs.ext4.

Usage: python bench/campaign_crash.py [--rounds 320] [--files 5] [--seed S] [--no-drive] [--status-every N] [--json]
Prints one line per kill and a summary: kills, aimed hits, lost, duplicated, corrupt,
leaks, gaps, backup and leftover violations (each must be 0), recovery time to READY=1
(p50, max), the steps the kills fell in. A failure names its seed: --seed S replays it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from campaign import crash  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=320)
    ap.add_argument("--files", type=int, default=5, help="files dropped per round")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-drive", action="store_true")
    ap.add_argument("--status-every", type=int, default=1, help="`naskahd status` after every n-th restart (default: every one)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    with tempfile.TemporaryDirectory(prefix="naskahd-crash-") as tmp:
        root = Path(tmp)
        drives = None
        if not args.no_drive:
            from drives_fixtures import Drives, ensure_udevd

            ensure_udevd()
            drives = Drives(root / "images")
            drives.folder.mkdir()
        try:
            result = crash.run(root / "campaign", seed=seed, rounds=args.rounds, files_per_round=args.files, drives=drives,
                               status_every=args.status_every)
        finally:
            if drives is not None:
                drives.cleanup()
    summary = result.summary()
    print(json.dumps(summary, indent=None if args.json else 1))
    for v in result.violations:
        print("VIOLATION", v)
    if result.violations:
        print(f"replay: python bench/campaign_crash.py --seed {seed} --rounds {args.rounds} --files {args.files}")
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
