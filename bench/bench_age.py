#!/usr/bin/env python3
"""age encryption benchmark: ``naskahd encrypt`` against the ``age`` CLI, same file, same run.

Generates one random file (``--size-mib``, 512 by default) in a temporary folder, then
for ``--rounds`` rounds encrypts it with both tools to a recipient, alternating which goes
first, each as a subprocess (``python -m naskahd encrypt FILE -r R -o OUT`` and
``age -r R -o OUT FILE``), and removes the outputs between runs.

Per run: wall time from spawn to exit (start-up included), the child's own peak RSS and
CPU time from ``os.wait4``. Reported: MB/s (10^6 bytes of plaintext per second, median and
best over the rounds), the median ratio naskahd/age, and naskahd's peak RSS.

``naskahd encrypt`` writes through naskahd.durable (temp file, fsync, rename, fsync dir)
and computes the plaintext and ciphertext SHA-256 (naskahd.age.Sealed); ``age`` does
neither. So a second age figure adds the time to fsync age's output right after it exits
("age+fsync"), the like-for-like durability comparison. Round 1 also checks that ``age
-d`` opens naskahd's output to the original bytes.

Usage: python bench/bench_age.py [--size-mib 512] [--rounds 5] [--dir DIR] [--json]
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


def diagnose(plain: Path, work: Path, recipient: str, size: int, rounds: int) -> dict[str, dict[str, float]]:
    """In-process decomposition (no start-up): where naskahd's encrypt time goes."""
    import types

    from naskahd import age as agefmt

    r = agefmt.parse_recipient(recipient)
    out = work / "diag.age"

    def encrypt() -> None:
        with open(plain, "rb") as src, open(out, "wb", buffering=0) as dst:
            agefmt.encrypt_stream(src, dst, [r])
            os.fsync(dst.fileno())
        out.unlink()

    class NoDigest:
        def update(self, data: object) -> None:
            pass

        def hexdigest(self) -> str:
            return ""

    def no_digests() -> None:
        real = agefmt.hashlib
        agefmt.hashlib = types.SimpleNamespace(sha256=lambda *a: NoDigest())  # type: ignore[assignment]
        try:
            encrypt()
        finally:
            agefmt.hashlib = real

    def sha_once() -> None:
        digest = hashlib.sha256()
        with open(plain, "rb", buffering=0) as f:
            buf = bytearray(1 << 20)
            while n := f.readinto(buf):
                digest.update(memoryview(buf)[:n])

    cases = {"encrypt_stream + fsync (in-process)": encrypt,
             "same without the two SHA-256 passes (diagnostic only)": no_digests,
             "one SHA-256 pass over the file": sha_once}
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            results[name].append(time.perf_counter() - start)
    return {name: {"median_s": statistics.median(t), "median_mbps": size / 1e6 / statistics.median(t)}
            for name, t in results.items()}


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

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--diagnose", action="store_true",
                        help="also time in-process: encrypt_stream, it without the SHA-256 passes, SHA-256 alone")
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
        naskahd_cmd = [sys.executable, "-m", "naskahd", "encrypt", str(plain), "-r", recipient, "-o"]
        age_cmd = ["age", "-r", recipient, "-o"]
        load_before = os.getloadavg()
        busy_before, ours_before, wall_before = machine_busy(), own_cpu(), time.perf_counter()
        results: dict[str, list[dict[str, float]]] = {"naskahd": [], "age": [], "age+fsync": []}
        for _ in range(args.warmup):  # first writes to fresh disk blocks are slower for both
            for tool, argv in (("naskahd", naskahd_cmd), ("age", age_cmd)):
                out = work / f"warm-{tool}.age"
                run_child([*argv, str(out)] if tool == "naskahd" else [*argv, str(out), str(plain)], env)
                out.unlink()
        for rnd in range(args.rounds):
            order = ["naskahd", "age"] if rnd % 2 == 0 else ["age", "naskahd"]
            for tool in order:
                out = work / f"out-{tool}.age"
                if tool == "naskahd":
                    res = run_child([*naskahd_cmd, str(out)], env)
                else:
                    res = run_child([*age_cmd, str(out), str(plain)])
                    synced = dict(res, wall=res["wall"] + fsync_file(out))
                    results["age+fsync"].append(synced)
                results[tool].append(res)
                if rnd == 0 and tool == "naskahd":  # correctness once: age opens naskahd's file
                    check_with_age(key, out, plain_sha)
                out.unlink()
            print(f"round {rnd + 1}: " + ", ".join(
                f"{t} {results[t][-1]['wall']:.3f}s" for t in ("naskahd", "age", "age+fsync")), file=sys.stderr)
        load_after = os.getloadavg()
        others = (machine_busy() - busy_before) - (own_cpu() - ours_before)
        others_share = max(0.0, others) / ((time.perf_counter() - wall_before) * (os.cpu_count() or 1))
        diag = diagnose(plain, work, recipient, size, args.rounds) if args.diagnose else None
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = {tool: summarize(runs, size) for tool, runs in results.items()}
    rss = max(r["rss_mib"] for r in results["naskahd"])
    report = {
        "size_mib": args.size_mib,
        "rounds": args.rounds,
        "machine": machine(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "others_cpu_share": others_share,
        "summary": summary,
        "ratio_vs_age": summary["naskahd"]["median_mbps"] / summary["age"]["median_mbps"],
        "ratio_vs_age_fsync": summary["naskahd"]["median_mbps"] / summary["age+fsync"]["median_mbps"],
        "naskahd_peak_rss_mib": rss,
        "age_peak_rss_mib": max(r["rss_mib"] for r in results["age"]),
        "cpu_s_median": {t: statistics.median(r["cpu"] for r in results[t]) for t in ("naskahd", "age")},
        "runs": results,
    }
    m = report["machine"]
    print(f"\n{args.size_mib} MiB, {args.rounds} rounds, {m['cpus']} CPUs ({m['cpu_model']}), "
          f"load {load_before[0]:.2f} -> {load_after[0]:.2f}; other processes used "
          f"{100 * others_share:.0f}% of the machine's CPU during the timed rounds")
    print("| tool | median MB/s | best MB/s | median s | CPU s (median) | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for tool in ("naskahd", "age", "age+fsync"):
        s = summary[tool]
        cpu = report["cpu_s_median"].get(tool.split("+")[0])
        rss_tool = rss if tool == "naskahd" else report["age_peak_rss_mib"]
        print(f"| {tool} | {s['median_mbps']:.0f} | {s['best_mbps']:.0f} | {s['median_s']:.3f} | {cpu:.2f} | {rss_tool:.1f} |")
    print(f"\nratio naskahd/age (median MB/s): {report['ratio_vs_age']:.2f}x; "
          f"vs age+fsync: {report['ratio_vs_age_fsync']:.2f}x; naskahd peak RSS {rss:.1f} MiB")
    if diag:
        report["diagnose"] = diag
        print("\nin-process decomposition (median):")
        for name, d in diag.items():
            print(f"  {name}: {d['median_s']:.3f} s, {d['median_mbps']:.0f} MB/s")
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
