#!/usr/bin/env python3
"""Filing benchmark: drop-to-registered latency, throughput, the physical floor, peak RSS.

Runs the real daemon (``naskahd run``) as a subprocess on a fresh tree in a temporary
folder, drops N files into ``drop/masuk`` as fast as it can (each written under a
``.part`` name, which the daemon ignores, then renamed: the rename instant is the drop
time), and reads the daemon's JSON log lines on stderr: the ``timestamp`` of each
``document.registered`` line is the file's registered time.

Figures (one set per content-check setting):

* latency    = registered - dropped, per file: p50, p99, max.
* throughput = N / (last registered - first dropped): what an operator sees end to end,
  including the settle wait every file must sit out.
* sustained  = N / (last registered - first registered): the filing rate once the first
  files have settled, i.e. without the settle wait. The files/s targets apply to this.
* floor      = a bare loop over the same N files: read, write a copy, fsync it, insert
  one row into a fresh SQLite register (WAL, synchronous=FULL, as the daemon's) and
  commit, per file. The fastest any one-file-at-a-time durable filer could be here.
* peak RSS   = VmHWM of the daemon from /proc/<pid>/status at the end of a run; the RSS
  target applies to the phase run against a register already holding --registered
  documents (100,000 by default), pre-populated directly through naskahd.register.

Usage: python bench/bench_filing.py [--files 2000] [--size-kib 20] [--settle 2.0]
           [--registered 100000] [--content-check on|off|both] [--kind pdf|random] [--repeat 1] [--json]
See bench/README.md and docs/benchmarks-filing.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from machineinfo import cpu_model, has_journal  # bench/machineinfo.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
TOKEN = b"BENCHTOKEN=0000000000000000"  # replaced per file by a same-length unique value
TOKEN_FMT = "BENCHTOKEN={:016x}"

# Driver used only when `python -m naskahd` cannot start (a CLI module the dispatcher
# lists is not written yet): the same dispatcher with the missing command modules left out.
DRIVER = """\
import importlib, sys
from naskahd import cli
ok = []
for name in cli.COMMANDS:
    try:
        importlib.import_module(f"naskahd.cli.{name}_cmd")
    except ModuleNotFoundError as exc:
        if exc.name != f"naskahd.cli.{name}_cmd":
            raise
        continue
    ok.append(name)
cli.COMMANDS = tuple(ok)
sys.exit(cli.main())
"""


# -- helpers ---------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def parse_ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS in KiB from /proc/<pid>/status."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def proc_cpu_seconds(pid: int, tid: int | None = None) -> tuple[float, float] | None:
    """(user, system) CPU seconds of a process, all threads; of its thread ``tid`` if given
    (the main thread's tid is the pid)."""
    try:
        with open(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tck, int(fields[12]) / tck
    except (OSError, IndexError, ValueError):
        return None


def system_busy_seconds() -> float:
    """CPU seconds user processes spent, machine-wide: user+nice+system minus kernel threads'.

    Kernel threads (jbd2, writeback workers) mostly work for our own fsyncs, so they are
    left out; so are interrupts and steal.
    """
    tck = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = fields[0] + fields[1] + fields[2]
    kernel = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[6]) & 0x00200000:  # PF_KTHREAD
            kernel += int(rest[11]) + int(rest[12])
    return (busy - kernel) / tck


def machine(workdir: Path) -> dict[str, Any]:
    model = cpu_model()
    try:
        fstype = subprocess.run(["df", "--output=fstype,source", str(workdir)], capture_output=True, text=True,
                                check=True).stdout.split("\n")[1].split()
    except (OSError, subprocess.CalledProcessError, IndexError):
        fstype = ["?", "?"]
    mem_kib = 0
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "memory_mib": mem_kib // 1024,
        "kernel": platform.release(), "python": platform.python_version(),
        "workdir": str(workdir), "filesystem": fstype[0], "device": fstype[1] if len(fstype) > 1 else "?",
        "journal": has_journal(fstype[0], fstype[1] if len(fstype) > 1 else "?"),
    }


# -- test files ------------------------------------------------------------------------------
def make_pdf_template(size: int) -> bytes:
    """A valid one-page PDF of exactly ``size`` bytes (if size allows), holding TOKEN once.

    The padding is PDF comment lines inside the page's uncompressed content stream, so
    replacing TOKEN by a same-length value keeps every xref offset right.
    """
    import pypdf
    from pypdf.generic import DecodedStreamObject, NameObject

    def build(pad: int) -> bytes:
        w = pypdf.PdfWriter()
        page = w.add_blank_page(595, 842)
        lines, left = [], pad
        while left > 0:
            n = min(left, 80)
            lines.append(b"%" + b"x" * (n - 2) + b"\n" if n >= 2 else b"\n")
            left -= n
        stream = DecodedStreamObject()
        stream.set_data(b"% naskahd bench " + TOKEN + b"\n" + b"".join(lines) + b"BT ET\n")
        page[NameObject("/Contents")] = w._add_object(stream)
        out = io.BytesIO()
        w.write(out)
        return out.getvalue()

    pad = 0
    data = build(pad)
    for _ in range(10):
        if len(data) == size or len(data) > size and pad == 0:
            break
        pad = max(0, pad + size - len(data))
        data = build(pad)
    assert data.count(TOKEN) == 1
    pypdf.PdfReader(io.BytesIO(data)).pages[0].get_contents()  # it parses
    return data


class Corpus:
    """N distinct file contents (distinct SHA-256: the daemon files duplicates aside)."""

    def __init__(self, kind: str, size: int, seed: int) -> None:
        self.kind, self.size, self.seed = kind, size, seed
        self.template = make_pdf_template(size) if kind == "pdf" else b""

    def content(self, i: int) -> bytes:
        if self.kind == "pdf":
            return self.template.replace(TOKEN, TOKEN_FMT.format((self.seed << 32) | i).encode())
        head = hashlib.sha256(f"{self.seed}:{i}".encode()).digest()
        return head + os.urandom(max(0, self.size - len(head)))

    def name(self, i: int) -> str:
        return f"surat-{self.seed:x}-{i:06d}.{'pdf' if self.kind == 'pdf' else 'bin'}"


# -- the daemon ------------------------------------------------------------------------------
class Naskahd:
    def __init__(self, python: str, workdir: Path) -> None:
        self.python = python
        probe = subprocess.run([python, "-m", "naskahd", "--help"], capture_output=True, text=True)
        if probe.returncode == 0:
            self.prefix, self.fallback = [python, "-m", "naskahd"], False
        else:
            driver = workdir / "naskahd_driver.py"
            driver.write_text(DRIVER, encoding="utf-8")
            self.prefix, self.fallback = [python, str(driver)], True
            log("`python -m naskahd` fails (" + (probe.stderr.strip().splitlines() or ["?"])[-1]
                + "): running the daemon through a driver without the missing CLI modules")
        self.has_complete = subprocess.run(
            [python, "-c", "import naskahd.complete"], capture_output=True).returncode == 0

    def init(self, root: Path, settle: float, content_check: bool) -> Path:
        subprocess.run([*self.prefix, "init", "--root", str(root)], check=True, capture_output=True, text=True)
        cfg = root / "naskahd.toml"
        text = cfg.read_text(encoding="utf-8")
        text, n1 = re.subn(r"(?m)^settle_seconds = [0-9.]+", f"settle_seconds = {settle}", text)
        text, n2 = re.subn(r"(?m)^content_check = \w+", f"content_check = {str(content_check).lower()}", text)
        if n1 != 1 or n2 != 1:
            raise SystemExit(f"cannot set settle_seconds/content_check in {cfg}")
        cfg.write_text(text, encoding="utf-8")
        return cfg


class DaemonRun:
    """The daemon as a subprocess; its stderr JSON lines are parsed as they come."""

    def __init__(self, nk: Naskahd, cfg: Path, profile: Path | None = None, profiler: str = "cprofile") -> None:
        cmd = [*nk.prefix, "--config", str(cfg), "run", "--log-format", "json"]
        if profile is not None and profiler == "cprofile":
            cmd = [nk.python, "-m", "cProfile", "-o", str(profile), *cmd[1:]]
        self.spy: subprocess.Popen[bytes] | None = None
        self.spy_out = profile if profiler.startswith("py-spy") else None
        self.wall = profiler == "py-spy-wall"
        self.lock = threading.Lock()
        self.registered: dict[str, float] = {}  # drop-relative path -> registered (epoch s)
        self.counts: dict[str, int] = {}
        self.other: list[dict[str, Any]] = []  # warnings/errors worth showing
        self.tail: list[str] = []
        self.started = threading.Event()
        self.scanned = threading.Event()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     cwd=cfg.parent, env={**os.environ, "LANG": "C.UTF-8"})
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                ev = json.loads(text)
            except ValueError:
                ev = None
            with self.lock:
                self.tail = (self.tail + [text])[-50:]
                if not isinstance(ev, dict):
                    continue
                name = ev.get("event", "")
                self.counts[name] = self.counts.get(name, 0) + 1
                if name == "document.registered" and "path" in ev:
                    self.registered[ev["path"]] = parse_ts(ev["timestamp"])
                elif name == "daemon.started":
                    self.started.set()
                elif name == "drop.scanned":
                    self.scanned.set()
                elif (ev.get("level") in ("warning", "error", "critical") and len(self.other) < 20
                      and name != "encryption.no_recipient"):  # expected: no age recipient in a bench tree
                    self.other.append(ev)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.started.is_set() and self.scanned.is_set():
                if self.spy_out is not None:
                    # Sampling profiler attached to the running daemon: only the thread that holds
                    # the GIL (where the CPU goes), collapsed stacks ("stack count" per line).
                    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
                    # --idle: every thread's wall time, waits and syscalls (fsync, rename) included.
                    which = "--idle" if self.wall else "--gil"
                    self.spy = subprocess.Popen(
                        [spy, "record", "--pid", str(self.proc.pid), "--rate", "250", "--threads", which,
                         "--format", "raw", "--output", str(self.spy_out), "--nonblocking"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1.0)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise SystemExit("daemon did not start:\n" + "\n".join(self.tail))

    def n_registered(self) -> int:
        with self.lock:
            return len(self.registered)

    def wait_registered(self, n: int, quiet_timeout: float) -> None:
        """Until n files are registered, or nothing new came for quiet_timeout seconds."""
        last, last_change = -1, time.monotonic()
        while True:
            got = self.n_registered()
            if got >= n:
                return
            if got != last:
                last, last_change = got, time.monotonic()
            if time.monotonic() - last_change > quiet_timeout or self.proc.poll() is not None:
                log(f"gave up waiting: {got}/{n} registered; last log lines:\n  " + "\n  ".join(self.tail[-8:]))
                return
            time.sleep(0.05)

    def stop(self) -> dict[str, Any]:
        """Peak RSS and CPU time (read before it exits), then SIGTERM."""
        st = proc_status(self.proc.pid)
        cpu = proc_cpu_seconds(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.reader.join(timeout=5)
        if self.spy is not None:
            try:
                self.spy.wait(timeout=30)  # it writes its output when the daemon exits
            except subprocess.TimeoutExpired:
                self.spy.send_signal(signal.SIGINT)
                self.spy.wait()
        return {"vmhwm_kib": st.get("VmHWM"), "vmrss_kib": st.get("VmRSS"),
                "cpu_seconds": round(sum(cpu), 2) if cpu else None,
                "cpu_user_s": cpu[0] if cpu else None, "cpu_system_s": cpu[1] if cpu else None, "exit_code": rc}


# -- phases ----------------------------------------------------------------------------------
def drop_files(drop: Path, corpus: Corpus, n: int, start: int = 0, rate: float = 0.0) -> dict[str, float]:
    """Write each file as NAME.part, then rename it to NAME; returns relpath -> rename time.

    ``rate`` > 0 paces the drops (files/s); 0 drops as fast as possible.
    """
    contents = [(corpus.name(i), corpus.content(i)) for i in range(start, start + n)]
    dropped: dict[str, float] = {}
    t0 = time.monotonic()
    for k, (name, data) in enumerate(contents):
        if rate > 0:
            wait = t0 + k / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        part = drop / (name + ".part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(part, drop / name)
        dropped[f"masuk/{name}"] = time.time()
    return dropped


def run_floor(base: Path, corpus: Corpus, n: int) -> dict[str, Any]:
    """The physical floor: per file, copy with write+fsync and commit one SQLite row."""
    src, dst = base / "src", base / "dst"
    src.mkdir(parents=True)
    dst.mkdir()
    for i in range(n):  # the sources, not timed
        (src / corpus.name(i)).write_bytes(corpus.content(i))
    os.sync()
    db = sqlite3.connect(base / "floor.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE documents (id INTEGER PRIMARY KEY, name TEXT UNIQUE, sha256 TEXT UNIQUE, size INTEGER)")
    names = [corpus.name(i) for i in range(n)]
    t0 = time.perf_counter()
    for name in names:
        with open(src / name, "rb", buffering=0) as f:
            data = f.read()
        fd = os.open(dst / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        db.execute("BEGIN")
        db.execute("INSERT INTO documents (name, sha256, size) VALUES (?, ?, ?)",
                   (name, hashlib.sha256(data).hexdigest(), len(data)))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    shutil.rmtree(base, ignore_errors=True)
    return {"files": n, "seconds": round(elapsed, 3), "files_per_s": round(n / elapsed, 1)}


def run_core(nk: Naskahd, base: Path, args: argparse.Namespace, check: bool, seed: int,
             profile: Path | None) -> dict[str, Any]:
    root = base / "tree"
    cfg = nk.init(root, args.settle, check)
    corpus = Corpus(args.kind, args.size_kib * 1024, seed)
    d = DaemonRun(nk, cfg, profile, args.profiler)
    d.wait_ready()
    time.sleep(0.5)  # let the start-up scan and the first heartbeat pass
    pace = f" at {args.drop_rate:g} files/s" if args.drop_rate > 0 else " as fast as possible"
    log(f"content_check={'on' if check else 'off'}: dropping {args.files} × {args.size_kib} KiB ({args.kind}){pace}")
    cpu0 = proc_cpu_seconds(d.proc.pid) or (0.0, 0.0)
    main0 = proc_cpu_seconds(d.proc.pid, d.proc.pid) or (0.0, 0.0)
    busy0, own0, wall0 = system_busy_seconds(), sum(os.times()[:2]), time.monotonic()
    dropped = drop_files(root / "drop" / "masuk", corpus, args.files, rate=args.drop_rate)
    drop_seconds = max(dropped.values()) - min(dropped.values())
    d.wait_registered(args.files, quiet_timeout=args.settle + 60)
    cpu1 = proc_cpu_seconds(d.proc.pid) or (0.0, 0.0)
    main1 = proc_cpu_seconds(d.proc.pid, d.proc.pid) or (0.0, 0.0)
    busy1, own1, wall1 = system_busy_seconds(), sum(os.times()[:2]), time.monotonic()
    res = d.stop()
    # Load from outside the benchmark while it ran (other users of a shared machine): the
    # CPU time of user processes minus the daemon's and this script's own.
    res["filing_cpu_s"] = round(sum(cpu1) - sum(cpu0), 2)
    # The main thread is the serial stage (register, publish, release): its CPU per file
    # bounds the rate, and with it the latency of a burst; less noisy than wall time.
    res["main_thread_cpu_s"] = round(sum(main1) - sum(main0), 2)
    res["others_cpu_share"] = round(max(0.0, (busy1 - busy0) - (sum(cpu1) - sum(cpu0)) - (own1 - own0))
                                    / ((wall1 - wall0) * (os.cpu_count() or 1)), 2)
    with d.lock:
        registered = dict(d.registered)
        counts = dict(d.counts)
        other = list(d.other)
    lat = [registered[p] - t for p, t in dropped.items() if p in registered]
    out: dict[str, Any] = {
        "content_check": "on" if check else "off",
        "files": args.files, "registered": len(lat), "drop_seconds": round(drop_seconds, 3),
        "events": {k: v for k, v in counts.items() if k.startswith(("document.", "register.", "archive."))},
        "daemon": res,
    }
    if other:
        out["warnings"] = other[:5]
    if lat:
        first_drop = min(dropped.values())
        reg_times = sorted(registered[p] for p in dropped if p in registered)
        span_total = reg_times[-1] - first_drop
        span_sustained = reg_times[-1] - reg_times[0]
        out.update({
            "latency_p50_s": round(percentile(lat, 50), 3),
            "latency_p99_s": round(percentile(lat, 99), 3),
            "latency_min_s": round(min(lat), 3),
            "latency_max_s": round(max(lat), 3),
            "latency_mean_s": round(statistics.fmean(lat), 3),
            "throughput_files_per_s": round(len(lat) / span_total, 1) if span_total > 0 else None,
            "sustained_files_per_s": round(len(lat) / span_sustained, 1) if span_sustained > 0 else None,
            "first_to_last_registered_s": round(span_sustained, 3),
        })
    shutil.rmtree(base, ignore_errors=True)
    return out


def prepopulate(cfg_path: Path, n: int) -> float:
    """Insert n FILED inbound documents (fake archive paths) in one transaction."""
    sys.path.insert(0, str(ROOT / "daemon"))
    from sqlalchemy import insert

    from naskahd import config as config_mod
    from naskahd.categories import INBOUND
    from naskahd.register import AgendaCounter, Document, DocumentState, format_agenda, open_register
    from naskahd.register.numbering import agenda_stem

    cfg = config_mod.load(str(cfg_path))
    now = dt.datetime.now(dt.UTC)
    year = now.astimezone(cfg.timezone).year
    local = now.astimezone(cfg.timezone)
    folder = f"{INBOUND}/{local.year:04d}/{local.month:02d}"
    t0 = time.perf_counter()
    sessions = open_register(cfg.database_url)
    rows = []
    for i in range(1, n + 1):
        name = f"surat undangan rapat koordinasi {i:06d}.pdf"
        rows.append(dict(
            agenda=format_agenda(i, INBOUND, year), category=INBOUND, year=year, number=i,
            original_name=name, original_name_raw=name.encode(), source_relpath=f"masuk/{name}".encode(),
            archive_path=f"{folder}/{agenda_stem(i, INBOUND, year)}_{name}", temp_name=None,
            size=20480, sha256=hashlib.sha256(b"prepopulated:%d" % i).hexdigest(),
            detected_type="pdf", received_at=now - dt.timedelta(seconds=n - i), state=DocumentState.FILED,
        ))
    with sessions.begin() as session:
        session.execute(insert(Document), rows)
        session.add(AgendaCounter(category=INBOUND, year=year, last_number=n))
    sessions.kw["bind"].dispose()
    return time.perf_counter() - t0


def run_rss(nk: Naskahd, base: Path, args: argparse.Namespace, check: bool, seed: int) -> dict[str, Any]:
    root = base / "tree"
    cfg = nk.init(root, args.settle, check)
    log(f"RSS phase: pre-populating the register with {args.registered:,} documents")
    took = prepopulate(cfg, args.registered)
    db_mib = (root / "state" / "register.sqlite3").stat().st_size / 2**20
    corpus = Corpus(args.kind, args.size_kib * 1024, seed)
    d = DaemonRun(nk, cfg)
    d.wait_ready()
    idle = proc_status(d.proc.pid)
    batch = args.rss_batch
    log(f"RSS phase: daemon up (VmRSS {idle.get('VmRSS', 0) / 1024:.1f} MiB), filing {batch} more files")
    drop_files(root / "drop" / "masuk", corpus, batch)
    d.wait_registered(batch, quiet_timeout=args.settle + 60)
    time.sleep(0.5)
    res = d.stop()
    shutil.rmtree(base, ignore_errors=True)
    return {
        "registered_before": args.registered, "content_check": "on" if check else "off",
        "prepopulate_seconds": round(took, 1), "register_mib": round(db_mib, 1),
        "batch": batch, "batch_registered": d.n_registered(),
        "idle_rss_kib": idle.get("VmRSS"), "daemon": res,
    }


# -- report ----------------------------------------------------------------------------------
METRICS = ("latency_p50_s", "latency_p99_s", "latency_max_s", "throughput_files_per_s", "sustained_files_per_s")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per content-check setting: the median over repetitions of each figure (HWM: the max)."""
    out: dict[str, Any] = {}
    for tag in ("off", "on"):
        mine = [r for r in runs if r["content_check"] == tag]
        if not mine:
            continue
        s: dict[str, Any] = {"repetitions": len(mine), "files": mine[0]["files"],
                             "registered_min": min(r["registered"] for r in mine)}
        for m in METRICS:
            vals = [r[m] for r in mine if r.get(m) is not None]
            s[m] = round(statistics.median(vals), 3) if vals else None
        s["floor_files_per_s"] = round(statistics.median(r["floor"]["files_per_s"] for r in mine), 1)
        ratios = [(r.get("sustained_files_per_s") or 0) / r["floor"]["files_per_s"] for r in mine]
        s["sustained_over_floor"] = round(statistics.median(ratios), 2)
        s["vmhwm_kib_max"] = max(r["daemon"]["vmhwm_kib"] or 0 for r in mine)
        s["filing_cpu_ms_per_file"] = round(statistics.median(
            1000 * r["daemon"]["filing_cpu_s"] / r["files"] for r in mine), 3)
        s["main_cpu_ms_per_file"] = round(statistics.median(
            1000 * r["daemon"]["main_thread_cpu_s"] / r["files"] for r in mine), 3)
        out[tag] = s
    return out


def evaluate(result: dict[str, Any], settle: float) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []

    def add(name: str, value: Any, target: str, ok: bool | None) -> None:
        checks.append({"check": name, "value": value, "target": target,
                       "status": "n/a" if ok is None else ("PASS" if ok else "MISS")})

    summary = result["summary"]
    for tag, s in summary.items():
        t = f"[check {tag}]"
        add(f"{t} all files registered", f"min {s['registered_min']}/{s['files']}", "all",
            s["registered_min"] == s["files"])
        if s["latency_p50_s"] is None:
            continue
        add(f"{t} latency p50 (s)", s["latency_p50_s"], f"<= settle+0.25 = {settle + 0.25:g}",
            s["latency_p50_s"] <= settle + 0.25)
        add(f"{t} latency p99 (s)", s["latency_p99_s"], f"<= settle+1 = {settle + 1:g}",
            s["latency_p99_s"] <= settle + 1)
        sus = s["sustained_files_per_s"] or 0.0
        add(f"{t} sustained (files/s)", sus, ">= 500", sus >= 500)
        add(f"{t} sustained / floor", s["sustained_over_floor"],
            f">= 0.4 (floor {s['floor_files_per_s']:g} files/s)", s["sustained_over_floor"] >= 0.4)
    on, off = summary.get("on"), summary.get("off")
    if on and off and on.get("sustained_files_per_s") and off.get("sustained_files_per_s"):
        ratio = on["sustained_files_per_s"] / off["sustained_files_per_s"]
        add("sustained, check on / off", round(ratio, 3), ">= 0.9", ratio >= 0.9)
    for rss in result.get("rss", []):
        hwm = (rss["daemon"]["vmhwm_kib"] or 0) / 1024
        add(f"[check {rss['content_check']}] peak RSS with {rss['registered_before']:,} registered (MiB)", round(hwm, 1),
            "<= 60 (MiB; 60 MB read as binary)", hwm <= 60)
    return checks


def _table(cols: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(c), *(len(str(r[i])) for r in rows)) for i, c in enumerate(cols)]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for row in rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


def print_table(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"\nnaskahd filing benchmark — {result['started']}")
    print(f"command: {result['command']}")
    print(f"machine: {m['cpus']} CPU ({m['cpu_model']}), {m['memory_mib']} MiB RAM, kernel {m['kernel']}, "
          f"Python {m['python']}, workdir {m['workdir']} on {m['filesystem']}"
          f"{ {True: ' with a journal', False: ' WITHOUT a journal'}.get(m.get('journal'), '')} ({m['device']})")
    p = result["params"]
    print(f"params:  {p['files']} files × {p['size_kib']} KiB ({p['kind']}), settle {p['settle']:g} s, "
          f"{p['repeat']} repetition(s), drops {'at %g files/s' % p['drop_rate'] if p['drop_rate'] else 'as fast as possible'}, daemon via "
          f"{'driver (missing CLI modules)' if result['fallback_driver'] else 'python -m naskahd'}")
    for note in result["notes"]:
        print(f"note:    {note}")
    print()
    cols = ["check", "rep", "p50 s", "p99 s", "max s", "thru f/s", "sust f/s", "floor f/s", "sust/floor",
            "HWM MiB", "CPU usr+sys s", "CPU ms/file", "main ms/file", "others"]
    rows = []
    for r in result["runs"]:
        d = r["daemon"]
        rows.append([r["content_check"], r["rep"], r.get("latency_p50_s"), r.get("latency_p99_s"),
                     r.get("latency_max_s"), r.get("throughput_files_per_s"), r.get("sustained_files_per_s"),
                     r["floor"]["files_per_s"],
                     round((r.get("sustained_files_per_s") or 0) / r["floor"]["files_per_s"], 2),
                     round((d["vmhwm_kib"] or 0) / 1024, 1), f"{d['cpu_user_s']}+{d['cpu_system_s']}",
                     round(1000 * d["filing_cpu_s"] / r["files"], 3),
                     round(1000 * d["main_thread_cpu_s"] / r["files"], 3),
                     f"{d.get('others_cpu_share', 0):.0%}"])
    if result["params"]["repeat"] > 1:
        for tag, s in result["summary"].items():
            rows.append([tag, "median", s["latency_p50_s"], s["latency_p99_s"], s["latency_max_s"],
                         s["throughput_files_per_s"], s["sustained_files_per_s"], s["floor_files_per_s"],
                         s["sustained_over_floor"], round(s["vmhwm_kib_max"] / 1024, 1), "",
                         s["filing_cpu_ms_per_file"], s["main_cpu_ms_per_file"], ""])
    _table(cols, rows)
    print("\n  latency    = registered (the daemon's document.registered timestamp) - dropped (rename of the .part file)")
    print("  thru       = files / (last registered - first dropped): end to end, includes the settle wait")
    print("  sust       = files / (last registered - first registered): filing rate without the settle wait")
    print("  floor      = bare loop, per file: copy + fsync + one committed SQLite row (WAL, synchronous=FULL),")
    print("               measured just before each daemon run")
    print("  HWM        = daemon VmHWM (peak RSS) after the run; CPU = the daemon's user+system CPU seconds, start-up included")
    print("  CPU ms/file= the daemon's CPU time from the first drop to the last registration, per file")
    print("  main ms/file= the same for the daemon's main thread alone (the serial stage: register, publish,")
    print("               release): what bounds the rate and a burst's latency, and less noisy than wall time")
    print("  others     = share of the machine's CPU used by other processes while files were dropped and filed")
    print("               (a shared machine: anything above a few % makes the figures pessimistic)")
    if result["params"]["drop_rate"]:
        print("  (drops were paced: thru/sust are bounded by the drop rate and say nothing about capacity)")
    if result.get("rss"):
        print()
    for rss in result.get("rss", []):
        d = rss["daemon"]
        print(f"RSS phase: register pre-populated with {rss['registered_before']:,} FILED documents "
              f"({rss['register_mib']} MiB, {rss['prepopulate_seconds']} s), content check {rss['content_check']}; "
              f"daemon idle VmRSS {(rss['idle_rss_kib'] or 0) / 1024:.1f} MiB, then filed "
              f"{rss['batch_registered']}/{rss['batch']} files: VmHWM {(d['vmhwm_kib'] or 0) / 1024:.1f} MiB "
              f"({(d['vmhwm_kib'] or 0) * 1024 / 1e6:.1f} MB)")
    shares = [r["daemon"].get("others_cpu_share") or 0.0 for r in result["runs"]]
    if shares and statistics.median(shares) > 0.10:
        print(f"\nWARNING: other processes used {statistics.median(shares):.0%} of the CPUs (median) during the runs:"
              " the machine was shared, so these figures are pessimistic; re-run on an idle machine.")
    print("\nTargets" + (" (medians over repetitions)" if result["params"]["repeat"] > 1 else "") + ":")
    for c in result["checks"]:
        print(f"  {c['status']:4}  {c['check']}: {c['value']}  (target {c['target']})")
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000, help="files to drop per run (default 2000)")
    ap.add_argument("--size-kib", type=int, default=20, help="size of each file in KiB (default 20)")
    ap.add_argument("--settle", type=float, default=2.0, help="[watch] settle_seconds for the daemon (default 2.0)")
    ap.add_argument("--registered", type=int, default=100_000,
                    help="documents pre-registered for the RSS phase (default 100000; 0 skips the phase)")
    ap.add_argument("--rss-batch", type=int, default=200, help="files filed in the RSS phase (default 200)")
    ap.add_argument("--content-check", choices=("on", "off", "both"), default="both",
                    help="[watch] content_check setting(s) to measure (default both)")
    ap.add_argument("--kind", choices=("pdf", "random"), default="pdf",
                    help="pdf: valid one-page PDFs padded to size (default); random: random bytes")
    ap.add_argument("--drop-rate", type=float, default=0.0,
                    help="pace the drops at this many files/s (default 0: as fast as possible, a burst)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="repetitions of each core run, settings interleaved; targets use medians (default 1)")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where to make the temporary trees (default: the system temp dir); same disk as production")
    ap.add_argument("--python", default=sys.executable, help="interpreter with naskahd installed (default: this one)")
    ap.add_argument("--profile-dir", type=Path, default=None,
                    help="profile the daemon during the core runs; output in <dir>/daemon-check-<on|off>[-<rep>].*")
    ap.add_argument("--profiler", choices=("cprofile", "py-spy", "py-spy-wall"), default="cprofile",
                    help="cprofile: python -m cProfile (deterministic, slows the daemon); py-spy: sampling, attached "
                         "after start-up, GIL holder only (pip install py-spy), collapsed stacks in a .pyspy.txt; "
                         "py-spy-wall: every thread's wall time (waits and syscalls too)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    if args.files < 2:
        ap.error("--files must be at least 2")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    base = Path(tempfile.mkdtemp(prefix="naskahd-bench-", dir=args.workdir))
    nk = Naskahd(args.python, base)
    notes: list[str] = []
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.content_check]
    if True in modes and not nk.has_complete:
        notes.append("content_check=on skipped: naskahd.complete is not importable yet (measured with the check off only)")
        modes = [m for m in modes if not m] or [False]
    result: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(base), "fallback_driver": nk.fallback,
        "params": {"files": args.files, "size_kib": args.size_kib, "settle": args.settle, "kind": args.kind,
                   "registered": args.registered, "content_check": args.content_check, "repeat": args.repeat,
                   "drop_rate": args.drop_rate},
        "notes": notes, "runs": [],
    }
    seed = int(time.time()) & 0xFFFF
    try:
        k = 0
        for rep in range(1, args.repeat + 1):
            order = modes if rep % 2 else modes[::-1]  # alternate which setting goes first
            for check in order:
                k += 1
                tag = "on" if check else "off"
                log(f"floor: {args.files} files, copy+fsync+commit each")
                floor = run_floor(base / f"floor-{k}", Corpus(args.kind, args.size_kib * 1024, seed + 1000 + k),
                                  args.files)
                log(f"floor: {floor['files_per_s']} files/s")
                prof = None
                if args.profile_dir:
                    args.profile_dir.mkdir(parents=True, exist_ok=True)
                    suffix = "" if args.repeat == 1 else f"-{rep}"
                    ext = ".prof" if args.profiler == "cprofile" else ".pyspy.txt"
                    prof = args.profile_dir.resolve() / f"daemon-check-{tag}{suffix}{ext}"
                run = run_core(nk, base / f"core-{k}", args, check, seed + k, prof)
                run["rep"], run["floor"] = rep, floor
                result["runs"].append(run)
                log(f"check {tag}: p50 {run.get('latency_p50_s')} s, p99 {run.get('latency_p99_s')} s, "
                    f"sustained {run.get('sustained_files_per_s')} files/s, "
                    f"HWM {(run['daemon']['vmhwm_kib'] or 0) / 1024:.1f} MiB")
        if args.registered > 0:
            # Per setting: the content check may import more (pypdf for PDFs).
            result["rss"] = [run_rss(nk, base / f"rss-{i}", args, check, seed + 500 + i) for i, check in enumerate(modes)]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result["summary"] = summarize(result["runs"])
    result["checks"] = evaluate(result, args.settle)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0 if all(c["status"] != "MISS" for c in result["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
