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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the filled installation in DIR (made on the first run, reused after)")
    parser.add_argument("--only-fill", action="store_true", help="with --keep: fill it and stop")
    args = parser.parse_args()
    import httpx

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
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "naskahd", "--config", str(config), "web", "--listen", f"127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "LANG": "C.UTF-8"})
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(base + "/login", timeout=2)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            idle = proc_status(proc.pid)
            c = httpx.Client(base_url=base, timeout=60)
            token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)  # type: ignore[union-attr]
            c.post("/login", data={"csrf": token, "username": "bench", "password": PASSWORD})
            cases = {
                "dashboard": "/",
                "search": "/register?text=Nota+Dinas",
                "search by subject": "/register?perihal=nomor+1234",
                "search by agenda": "/register?agenda=0123/M",
                "register, page 100": "/register?page=100",
                "search by date range": "/register?date_from=2026-11-10&date_to=2026-11-12&category=inbound",
            }
            results = {}
            for name, path in cases.items():
                server, wall = [], []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    r = c.get(path)
                    wall.append((time.perf_counter() - start) * 1000)
                    assert r.status_code == 200, (path, r.status_code)
                    server.append(float(re.search(r"dur=([0-9.]+)", r.headers["server-timing"]).group(1)))  # type: ignore[union-attr]
                results[name] = {"server_ms_median": statistics.median(server), "server_ms_p90": sorted(server)[int(len(server) * 0.9)],
                                 "wall_ms_median": statistics.median(wall)}
            after = proc_status(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    rows = []
    ok = True
    for name, r in results.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else ("PASS" if r["server_ms_median"] <= target else "MISS")
        ok &= verdict != "MISS"
        rows.append((name, r["server_ms_median"], r["server_ms_p90"], r["wall_ms_median"], target, verdict))
    rss_ok = after["VmHWM"] <= RSS_TARGET_MB
    ok &= rss_ok
    summary = {"documents": args.documents, "repeat": args.repeat, "cpu": cpu_model(), "fill_s": round(fill_s, 1),
               "pages": results, "rss_idle_mb": round(idle["VmRSS"], 1), "rss_mb": round(after["VmRSS"], 1),
               "rss_peak_mb": round(after["VmHWM"], 1), "web_cpu_s": round(after["cpu_s"], 2)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{args.documents:,} documents (filled in {fill_s:.0f} s), {args.repeat} requests per page; CPU: {cpu_model()}")
        print(f"{'page':<24} {'server median':>14} {'server p90':>11} {'wall median':>12}  target")
        for name, med, p90, wall, target, verdict in rows:
            print(f"{name:<24} {med:>11.1f} ms {p90:>8.1f} ms {wall:>9.1f} ms  {'≤ %d ms %s' % (target, verdict) if target else ''}")
        print(f"web process resident: {after['VmRSS']:.1f} MB now, peak {after['VmHWM']:.1f} MB (target ≤ {RSS_TARGET_MB:.0f} MB "
              f"{'PASS' if rss_ok else 'MISS'}); at start {idle['VmRSS']:.1f} MB; CPU used {after['cpu_s']:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
