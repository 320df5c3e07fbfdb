#!/usr/bin/env python3
"""Web page benchmark (issue 21): with 200,000 registered documents the dashboard is
served in ≤ 100 ms and a register search in ≤ 200 ms (server time, median of 50
requests), and the web process stays ≤ 80 MB resident.

Makes a fresh installation (``naskahd init``) in a temporary folder, fills its register
with --documents synthetic filed documents (tests/reportdata.py: one month, 60 % inbound,
30 % outbound, 10 % exempt) and letter details for one in ten, builds the search index as filing keeps it, adds an account, starts
the real ``naskahd web`` process on a free loopback port, signs in and requests each page
--repeat times. Server time is the ``Server-Timing: app;dur=`` the application writes for
each response (from the request's arrival to its response's start); the client's wall
clock is shown beside it. The process's resident size (VmRSS, and its peak VmHWM) is read
from /proc after the runs; its CPU time beside the wall clock.

Usage: python bench/bench_web.py [--documents 200000] [--repeat 50] [--json] [--keep DIR [--only-fill]]
       [--compare OLD/daemon]   (another tree's web process measured beside this one, interleaved)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machineinfo import cpu_model  # noqa: E402
from reportdata import fill  # noqa: E402

PASSWORD = "kata sandi benchmark"
TARGETS = {"dashboard": 100.0, "search": 200.0}
RSS_TARGET_MB = 80.0


def naskahd(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "naskahd", *args], capture_output=True, text=True, check=True,
                          env={**os.environ, "LANG": "C.UTF-8"}, **kw)  # type: ignore[call-overload]


def add_details(url: str, every: int = 10) -> None:
    from sqlalchemy import insert, select

    from naskahd.register import Document, LetterDetails, open_register

    sessions = open_register(url)
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    with sessions.begin() as s:
        rows = [{"document_id": i, "nomor": f"800/{i}/Diskominfo", "perihal": f"Perihal surat nomor {i}",
                 "asal": "Sekretariat Daerah" if cat == "inbound" else None, "sifat": "biasa",
                 "updated_at": now, "updated_by": "bench"}
                for i, cat in s.execute(select(Document.id, Document.category).where(Document.id % every == 0))
                if cat != "exempt"]
        for k in range(0, len(rows), 5000):
            s.execute(insert(LetterDetails), rows[k:k + 5000])
    from naskahd.letters import index

    with sessions.begin() as s:  # the search index, as filing and annotate keep it
        index.catch_up(s, limit=None)


def proc_status(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / ticks
    return out


CASES = {
    "dashboard": "/",
    "search": "/register?text=Nota+Dinas",
    "search by subject": "/register?perihal=nomor+1234",
    "search by agenda": "/register?agenda=0123/M",
    "register, page 100": "/register?page=100",
    "search by date range": "/register?date_from=2026-11-10&date_to=2026-11-12&category=inbound",
    "two words, never together": "/register?text=Nota+Edaran",  # the worst case: every candidate checked
}


class Web:
    """The real ``naskahd web`` on a free loopback port, from this tree or another one
    (``tree``: a ``daemon`` folder, put first on PYTHONPATH), signed in."""

    def __init__(self, config: Path, tree: Path | None) -> None:
        import socket

        import httpx

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "LANG": "C.UTF-8"}
        if tree is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [env.get("PYTHONPATH")])])
        self.proc = subprocess.Popen([sys.executable, "-m", "naskahd", "--config", str(config), "web", "--listen",
                                      f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/login", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        self.idle = proc_status(self.proc.pid)
        self.client = httpx.Client(base_url=base, timeout=60)
        token = re.search(r'name="csrf" value="([^"]+)"', self.client.get("/login").text).group(1)  # type: ignore[union-attr]
        self.client.post("/login", data={"csrf": token, "username": "bench", "password": PASSWORD})

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)


def run_cases(webs: dict[str, Web], repeat: int) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, float]]]:
    """Each page ``repeat`` times on every web process, interleaved request by request
    (the shared machine's load hits each alike); server time, wall clock, the process's CPU."""
    results: dict[str, dict[str, dict[str, float]]] = {name: {} for name in webs}
    for case, path in CASES.items():
        server: dict[str, list[float]] = {name: [] for name in webs}
        wall: dict[str, list[float]] = {name: [] for name in webs}
        cpu0 = {name: proc_status(w.proc.pid)["cpu_s"] for name, w in webs.items()}
        for _ in range(repeat):
            for name, web in webs.items():
                start = time.perf_counter()
                r = web.client.get(path)
                wall[name].append((time.perf_counter() - start) * 1000)
                assert r.status_code == 200, (name, path, r.status_code)
                server[name].append(float(re.search(r"dur=([0-9.]+)", r.headers["server-timing"]).group(1)))  # type: ignore[union-attr]
        for name, web in webs.items():
            cpu = proc_status(web.proc.pid)["cpu_s"] - cpu0[name]
            results[name][case] = {"server_ms_median": statistics.median(server[name]),
                                   "server_ms_p90": sorted(server[name])[int(len(server[name]) * 0.9)],
                                   "wall_ms_median": statistics.median(wall[name]),
                                   "cpu_ms_per_request": cpu * 1000 / repeat}
    return results, {name: proc_status(w.proc.pid) for name, w in webs.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the filled installation in DIR (made on the first run, reused after)")
    parser.add_argument("--only-fill", action="store_true", help="with --keep: fill it and stop")
    parser.add_argument("--compare", type=Path, metavar="TREE",
                        help="another tree's daemon/ folder (git archive OLD daemon | tar -x -C DIR): its web process is "
                             "measured beside this one's, request by request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-web-") as scratch:
        tmp = args.keep or Path(scratch)
        root = Path(tmp) / "n"
        config = root / "naskahd.toml"
        url = f"sqlite:///{root / 'state' / 'register.sqlite3'}"
        done = Path(tmp) / f"filled-{args.documents}"
        fill_s = 0.0
        if not done.exists():
            Path(tmp).mkdir(parents=True, exist_ok=True)
            naskahd("init", "--root", str(root))
            t0 = time.monotonic()
            fill(url, args.documents)
            add_details(url)
            fill_s = time.monotonic() - t0
            (Path(tmp) / "pw").write_text(PASSWORD + "\n")
            naskahd("--config", str(config), "user", "add", "bench", "--role", "operator", "--password-file", str(Path(tmp) / "pw"))
            done.touch()
        if args.only_fill:
            return 0
        trees = {"this": None, **({"compared": args.compare} if args.compare else {})}
        webs = {name: Web(config, tree) for name, tree in trees.items()}
        try:
            results, after = run_cases(webs, args.repeat)
        finally:
            for web in webs.values():
                web.stop()
    ok = True
    summary: dict[str, object] = {"documents": args.documents, "repeat": args.repeat, "cpu": cpu_model(),
                                  "fill_s": round(fill_s, 1), "load_average": os.getloadavg()}
    for name, web in webs.items():
        rss_ok = after[name]["VmHWM"] <= RSS_TARGET_MB
        verdicts = {case: "" if TARGETS.get(case) is None else ("PASS" if r["server_ms_median"] <= TARGETS[case] else "MISS")
                    for case, r in results[name].items()}
        if name == "this":
            ok &= rss_ok and "MISS" not in verdicts.values()
        summary[name] = {"tree": str(trees[name] or ROOT / "daemon"), "pages": results[name],
                         "rss_idle_mb": round(web.idle["VmRSS"], 1), "rss_mb": round(after[name]["VmRSS"], 1),
                         "rss_peak_mb": round(after[name]["VmHWM"], 1), "web_cpu_s": round(after[name]["cpu_s"], 2)}
        if args.json:
            continue
        print(f"== {name} ({trees[name] or ROOT / 'daemon'}): {args.documents:,} documents, {args.repeat} requests per page; "
              f"CPU: {cpu_model()}; load average {os.getloadavg()[0]:.1f}")
        print(f"{'page':<26} {'server median':>14} {'server p90':>11} {'wall median':>12} {'CPU/request':>12}  target")
        for case, r in results[name].items():
            target = TARGETS.get(case)
            print(f"{case:<26} {r['server_ms_median']:>11.1f} ms {r['server_ms_p90']:>8.1f} ms {r['wall_ms_median']:>9.1f} ms "
                  f"{r['cpu_ms_per_request']:>9.1f} ms  {'≤ %d ms %s' % (target, verdicts[case]) if target else ''}")
        a = after[name]
        print(f"web process resident: {a['VmRSS']:.1f} MB now, peak {a['VmHWM']:.1f} MB (target ≤ {RSS_TARGET_MB:.0f} MB "
              f"{'PASS' if rss_ok else 'MISS'}); at start {web.idle['VmRSS']:.1f} MB; CPU used {a['cpu_s']:.1f} s")
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
