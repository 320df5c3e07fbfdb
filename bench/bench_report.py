#!/usr/bin/env python3
"""Report benchmark: a month with 10,000 documents as PDF (target ≤ 10 s) and CSV (≤ 2 s).

Fills a fresh register (in a temporary folder) with --documents filed documents spread
over November 2026 (60 % inbound, 30 % outbound, 10 % exempt; the synthetic rows of
tests/reportdata.py), then times, per format, ``naskahd report --month 2026-11 --format F``
end to end as a person runs it (a new process: start-up, imports, gathering the data
from the register, rendering, registering the report, writing the file; wall clock and
the process's CPU time), and the same work in-process (``report.registry.generate``),
--repeat times each; the median wall clock of the command is compared with the target.
On a shared machine wall clock includes time the CPUs spent on others' work: the CPU
column is what the command itself used. Also times ``naskahd report list`` (which checks every report
for being out of date) and ``naskahd status``.

Usage: python bench/bench_report.py [--documents 10000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machineinfo import cpu_model  # noqa: E402  (bench/machineinfo.py)
from reportdata import fill  # noqa: E402  (tests/reportdata.py)

TARGETS = {"pdf": 10.0, "csv": 2.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--documents", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from naskahd.report import period, registry

    with tempfile.TemporaryDirectory(prefix="naskahd-bench-report-") as tmp:
        root = Path(tmp)
        config = root / "naskahd.toml"
        config.write_text('[paths]\ndrop = "drop"\narchive = "archive"\nstate = "state"\n'
                          '[office]\nname = "Dinas Komunikasi dan Informatika Kabupaten Kepulauan Mentawai"\n'
                          'place = "Tuapejat"\ntimezone = "Asia/Jakarta"\n', encoding="utf-8")
        from naskahd import config as config_mod
        from naskahd import installation

        installation.initialise(config_mod.load(str(config)))  # roots, markers, register: as `naskahd init`
        url = f"sqlite:///{root / 'state' / 'register.sqlite3'}"
        sessions = fill(url, args.documents)
        cfg = SimpleNamespace(office_name="Dinas Komunikasi dan Informatika Kabupaten Kepulauan Mentawai",
                              office_place="Tuapejat", timezone=ZoneInfo("Asia/Jakarta"))
        month = period.month("2026-11")
        results: dict[str, dict[str, object]] = {}
        for fmt in ("pdf", "csv"):
            cli, cpu, inproc, size, pages = [], [], [], 0, None
            for i in range(args.repeat):
                out = root / f"r{i}.{fmt}"
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "naskahd", "--config", str(config), "report", "--month", "2026-11",
                                "--format", fmt, "-o", str(out)], check=True, capture_output=True)
                cli.append(time.perf_counter() - t0)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
                size = out.stat().st_size
                t0 = time.perf_counter()
                _row, content = registry.generate(sessions, cfg, month, fmt, "id")
                inproc.append(time.perf_counter() - t0)
            if fmt == "pdf":
                from pypdf import PdfReader

                pages = len(PdfReader(str(root / "r0.pdf")).pages)
            results[fmt] = {"cli_median_s": round(statistics.median(cli), 3), "cli_runs_s": [round(x, 3) for x in cli],
                            "cli_cpu_median_s": round(statistics.median(cpu), 3),
                            "inprocess_median_s": round(statistics.median(inproc), 3), "bytes": size, "pages": pages,
                            "target_s": TARGETS[fmt], "pass": statistics.median(cli) <= TARGETS[fmt]}
        for name, argv in (("report list", ["report", "list", "--json"]), ("status", ["status", "--json"])):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "naskahd", "--config", str(config), *argv], capture_output=True)
            results[name] = {"s": round(time.perf_counter() - t0, 3)}
        # `status` only re-checks reviewed reports: review one, then time it again.
        registry.review(sessions, cfg, 1, "Kasi")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "naskahd", "--config", str(config), "status", "--json"], capture_output=True)
        results["status, one reviewed report"] = {"s": round(time.perf_counter() - t0, 3)}

    info = {"documents": args.documents, "repeat": args.repeat, "python": platform.python_version(),
            "cpu": cpu_model(), "cpus": os.cpu_count(), "loadavg": os.getloadavg(), "results": results}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{args.documents:,} documents in one month; {args.repeat} runs each; {info['cpu']}, {info['cpus']} CPUs; "
              f"load average at the end {info['loadavg'][0]:.2f} (others' work shares the CPUs: compare wall with CPU)")
        print(f"{'format':<8} {'CLI wall':>9} {'CLI CPU':>8} {'in-process':>11} {'target':>8} {'size':>10} {'pages':>6}  result")
        for fmt in ("pdf", "csv"):
            r = results[fmt]
            print(f"{fmt:<8} {r['cli_median_s']:>8.2f}s {r['cli_cpu_median_s']:>7.2f}s {r['inprocess_median_s']:>10.2f}s {r['target_s']:>7.1f}s "
                  f"{r['bytes']:>10,} {r['pages'] or '':>6}  {'PASS' if r['pass'] else 'MISS'}   runs {r['cli_runs_s']}")
        for name in ("report list", "status", "status, one reviewed report"):
            print(f"{name}: {results[name]['s']:.2f} s")
    return 0 if all(results[f]["pass"] for f in ("pdf", "csv")) else 1


if __name__ == "__main__":
    sys.exit(main())
