#!/usr/bin/env python3
"""age encryption benchmark (issue 3): ``naskahd encrypt`` against ``age -r``, same file, same run.

Generates one random file (``--size-mib``, 512 by default) in a temporary folder, then
for ``--rounds`` rounds encrypts it with both tools to a recipient, alternating which goes
first, each as a subprocess (``python -m naskahd encrypt FILE -r R -o OUT`` and
``age -r R -o OUT FILE``), and removes the outputs between runs.

Per run: wall time from spawn to exit (start-up included), the child's own peak RSS and
CPU time. Reported: MB/s (10^6 bytes of plaintext per second, median and best over the
rounds), the median ratio naskahd/age, and peak RSS.

``naskahd encrypt`` computes no digests (``encrypt_stream(..., digests=False)``) and
writes through naskahd.durable (temp file, fsync, no-replace rename, fsync of the
folder); ``age`` does not fsync. The issue's comparison is against plain ``age -r``; the
``age -r + fsync`` row adds the time to fsync age's output right after it exits, the
like-for-like durability comparison. Round 1 also checks that ``age -d`` opens naskahd's
output to the original bytes.

For information, measured in this process after the timed rounds (no start-up):
the daemon's path (``encrypt_stream`` with digests, fsync, then ``verify_sealed`` reading
the file back), the CLI's work without start-up, and the CLI's start-up alone (a 1-byte
file). None of these is part of the 1.0x comparison.

The naskahd child runs with a bytecode cache (``PYTHONPYCACHEPREFIX`` in the temporary
folder, filled by the warm-up round), as an installed package has its modules compiled;
``--no-bytecode-cache`` keeps the caller's setting (this machine sets
PYTHONDONTWRITEBYTECODE=1, which recompiles every naskahd module at each start).

Usage: python bench/bench_age.py [--size-mib 512] [--rounds 7] [--dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machineinfo import cpu_model  # bench/machineinfo.py, beside this script

ROOT = Path(__file__).resolve().parents[1]


def run_child(argv: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``argv``; return wall seconds, peak RSS (MiB) and CPU seconds of that child only.

    Peak RSS comes from /usr/bin/time (GNU time), whose own small process forks the tool:
    Linux carries a forking parent's high-water mark into a child's ru_maxrss across exec,
    so measuring straight from this (larger) Python process would overstate small tools.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        prefix = ["/usr/bin/time", "-q", "-f", "%M %U %S", "-o", report.name] if TIME else []
        start = time.perf_counter()
        proc = subprocess.Popen([*prefix, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode != 0:
            raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {err}")
        if TIME:
            rss_kib, user, system = report.read().split()[-3:]
            return {"wall": wall, "rss_mib": int(rss_kib) / 1024, "cpu": float(user) + float(system)}
    return {"wall": wall, "rss_mib": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime}


TIME = os.path.exists("/usr/bin/time")


def check_with_age(key: Path, enc: Path, plain_sha: str) -> None:
    digest = hashlib.sha256()
    with subprocess.Popen(["age", "-d", "-i", str(key), str(enc)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while data := proc.stdout.read(1 << 20):
            digest.update(data)
    if proc.returncode != 0 or digest.hexdigest() != plain_sha:
        raise SystemExit("age -d did not return the original bytes")


def in_process(plain: Path, work: Path, recipient: str, size: int, rounds: int) -> dict[str, dict[str, float]]:
    """For information, no start-up: the daemon's path, and the CLI's work alone."""
    from naskahd import age as agefmt
    from naskahd.cli import encrypt_cmd

    r = agefmt.parse_recipient(recipient)
    out = work / "inproc.age"

    def daemon_path() -> dict[str, float]:
        # As naskahd.filing does it: encrypt with digests to an unbuffered file, fsync, read back.
        start = time.perf_counter()
        with open(plain, "rb") as src, open(out, "xb", buffering=0) as dst:
            sealed = agefmt.encrypt_stream(src, dst, [r])
            os.fsync(dst.fileno())
        encrypted = time.perf_counter()
        with open(out, "rb") as check:
            agefmt.verify_sealed(check, sealed)
        done = time.perf_counter()
        out.unlink()
        return {"total": done - start, "encrypt+fsync": encrypted - start, "verify_sealed": done - encrypted}

    def cli_work() -> dict[str, float]:
        # What `naskahd encrypt` does after start-up: no digests, writeback hint, one fsync.
        start = time.perf_counter()
        with open(plain, "rb", buffering=0) as src, open(out, "xb", buffering=0) as dst:
            agefmt.encrypt_stream(src, encrypt_cmd._Writeback(dst), [r], digests=False)
            os.fsync(dst.fileno())
        done = time.perf_counter()
        out.unlink()
        return {"total": done - start}

    cases = {"daemon path: encrypt_stream with digests + verify_sealed": daemon_path,
             "CLI work without start-up: encrypt_stream(digests=False) + fsync": cli_work}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            results[name].append(fn())
    summary: dict[str, dict[str, float]] = {}
    for name, runs in results.items():
        parts = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        summary[name] = {**{f"median_{k}_s": v for k, v in parts.items()},
                         "median_mbps": size / 1e6 / parts["total"]}
    return summary


def startup(work: Path, recipient: str, env: dict[str, str], rounds: int) -> dict[str, float]:
    """``python -m naskahd encrypt`` of a 1-byte file: start-up, imports and the fsyncs."""
    tiny = work / "tiny.bin"
    tiny.write_bytes(b"x")
    runs = []
    for _ in range(rounds):
        out = work / "tiny.age"
        runs.append(run_child([sys.executable, "-m", "naskahd", "encrypt", str(tiny), "-r", recipient,
                               "-o", str(out)], env))
        out.unlink()
    return {"median_s": statistics.median(r["wall"] for r in runs), "peak_rss_mib": max(r["rss_mib"] for r in runs)}


def machine_busy() -> float:
    """CPU seconds all processes spent so far (all CPUs), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the tools, GNU time, age -d)."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def fsync_file(path: Path) -> float:
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - start


def make_input(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = 1 << 20
    with open(path, "wb") as f:
        left = size
        while left:
            data = os.urandom(min(block, left))
            digest.update(data)
            f.write(data)
            left -= len(data)
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def machine() -> dict[str, Any]:
    import cryptography

    model = cpu_model()
    age_version = subprocess.run(["age", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "age": age_version,
    }


def summarize(runs: list[dict[str, float]], size: int, key: str = "wall") -> dict[str, float]:
    times = [r[key] for r in runs]
    return {
        "median_s": statistics.median(times),
        "best_s": min(times),
        "median_mbps": size / 1e6 / statistics.median(times),
        "best_mbps": size / 1e6 / min(times),
    }


NASKAHD, AGE, AGE_FSYNC = "naskahd encrypt (CLI, no digests)", "age -r", "age -r + fsync"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--info-rounds", type=int, default=3,
                        help="rounds of the in-process information lines (default 3; 0: skip them)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run naskahd without a bytecode cache if the environment says so")
    parser.add_argument("--dir", help="folder for the temporary files (default: the system temp folder)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    if shutil.which("age") is None:
        raise SystemExit("the age CLI is not installed")

    sys.path.insert(0, str(ROOT / "daemon"))
    from naskahd import age as agefmt

    size = args.size_mib * 1024 * 1024
    work = Path(tempfile.mkdtemp(prefix="bench-age-", dir=args.dir))
    try:
        plain = work / "input.bin"
        print(f"generating {args.size_mib} MiB in {work} ...", file=sys.stderr)
        plain_sha = make_input(plain, size)
        identity = agefmt.generate_identity()
        recipient = str(identity.recipient())
        key = work / "bench.key"
        key.write_text(f"{identity}\n")
        with open(plain, "rb") as f:  # warm the page cache: both tools read from memory
            while f.read(1 << 22):
                pass
        env = dict(os.environ, PYTHONPATH=str(ROOT / "daemon"))
        if not args.no_bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        naskahd_cmd = [sys.executable, "-m", "naskahd", "encrypt", str(plain), "-r", recipient, "-o"]
        age_cmd = ["age", "-r", recipient, "-o"]
        load_before = os.getloadavg()
        results: dict[str, list[dict[str, float]]] = {NASKAHD: [], AGE: [], AGE_FSYNC: []}

        def once(tool: str, out: Path) -> dict[str, float]:
            if tool == NASKAHD:
                return run_child([*naskahd_cmd, str(out)], env)
            return run_child([*age_cmd, str(out), str(plain)])

        for _ in range(args.warmup):  # first writes to fresh disk blocks are slower for both
            for tool in (NASKAHD, AGE):
                out = work / "warm.age"
                once(tool, out)
                out.unlink()
        busy_before, ours_before, wall_before = machine_busy(), own_cpu(), time.perf_counter()
        for rnd in range(args.rounds):
            for tool in (NASKAHD, AGE) if rnd % 2 == 0 else (AGE, NASKAHD):
                out = work / "out.age"
                res = once(tool, out)
                results[tool].append(res)
                if tool == AGE:
                    results[AGE_FSYNC].append(dict(res, wall=res["wall"] + fsync_file(out)))
                if rnd == 0 and tool == NASKAHD:  # correctness once: age opens naskahd's file
                    check_with_age(key, out, plain_sha)
                out.unlink()
            print(f"round {rnd + 1}: " + ", ".join(f"{t} {results[t][-1]['wall']:.3f}s" for t in results),
                  file=sys.stderr)
        load_after = os.getloadavg()
        others = (machine_busy() - busy_before) - (own_cpu() - ours_before)
        others_share = max(0.0, others) / ((time.perf_counter() - wall_before) * (os.cpu_count() or 1))
        info = in_process(plain, work, recipient, size, args.info_rounds) if args.info_rounds else {}
        start_up = startup(work, recipient, env, max(args.info_rounds, 3)) if args.info_rounds else None
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = {tool: summarize(runs, size) for tool, runs in results.items()}
    peak = {tool: max(r["rss_mib"] for r in runs) for tool, runs in results.items()}
    cpu = {tool: statistics.median(r["cpu"] for r in runs) for tool, runs in results.items()}
    report = {
        "size_mib": args.size_mib,
        "rounds": args.rounds,
        "bytecode_cache": not args.no_bytecode_cache,
        "machine": machine(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "others_cpu_share": others_share,
        "summary": summary,
        "ratio_vs_age": summary[NASKAHD]["median_mbps"] / summary[AGE]["median_mbps"],
        "ratio_vs_age_fsync": summary[NASKAHD]["median_mbps"] / summary[AGE_FSYNC]["median_mbps"],
        "peak_rss_mib": peak,
        "cpu_s_median": cpu,
        "in_process": info,
        "cli_startup": start_up,
        "runs": results,
    }
    m = report["machine"]
    print(f"\n{args.size_mib} MiB, {args.rounds} rounds, {m['cpus']} CPUs ({m['cpu_model']}), "
          f"load {load_before[0]:.2f} -> {load_after[0]:.2f}; other processes used "
          f"{100 * others_share:.0f}% of the machine's CPU during the timed rounds")
    print("| tool | median MB/s | best MB/s | median s | CPU s (median) | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for tool in results:
        s = summary[tool]
        print(f"| {tool} | {s['median_mbps']:.0f} | {s['best_mbps']:.0f} | {s['median_s']:.3f} "
              f"| {cpu[tool]:.2f} | {peak[tool]:.1f} |")
    print(f"\nratio naskahd/age (median MB/s): {report['ratio_vs_age']:.2f}x; "
          f"vs age+fsync: {report['ratio_vs_age_fsync']:.2f}x; naskahd peak RSS {peak[NASKAHD]:.1f} MiB")
    if info:
        print("\nfor information, in-process (no start-up), median:")
        for name, d in info.items():
            parts = ", ".join(f"{k[7:-2]} {v:.3f} s" for k, v in d.items() if k.startswith("median_") and k.endswith("_s"))
            print(f"  {name}: {d['median_mbps']:.0f} MB/s ({parts})")
    if start_up:
        print(f"  CLI start-up, `python -m naskahd encrypt` of a 1-byte file: {start_up['median_s']:.3f} s, "
              f"peak RSS {start_up['peak_rss_mib']:.1f} MiB")
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
