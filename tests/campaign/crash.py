"""The crash campaign (issue 22): the real daemon SIGKILLed again and again, invariants
checked after every kill and every restart.

One campaign = one tree, one seed, ``rounds`` rounds. Each round drops a slice of the
workload (``workload.py``), starts the daemon (or not: some slices are dropped while it is
down) and kills it by one *aim*:

- ``boot:<syscall>#N``: strace from the exec, SIGKILL at the N-th call in one thread: the
  start-up itself (migrations, reconciliation of the previous kill, the catch-up scan);
- ``run:<syscall>#N``: strace attached once the daemon is READY, the slice dropped, SIGKILL
  at the N-th call: detection (openat, read), the early copy, hashing and encryption (read,
  write, pread64), the temp file's and folders' fsyncs, the register transaction (pwrite64,
  fdatasync on the WAL), the rename into place and the claims and moves (renameat2), the
  removal of the source (unlink);
- ``event:<name>``: SIGKILL as soon as the log says ``name`` (document.registered,
  document.duplicate, document.review, document.encrypted);
- ``time:<s>``: SIGKILL after a random time;
- with a drive (``drive=True``): ``drive:<syscall>#N``, strace attached and the drive
  mounted again, so the daemon syncs: copy (write), flush (syncfs), the renames, read-back
  (read), the register update (fdatasync).

After each kill: ``invariants.check`` (not settled); where the kill fell is classified from
the call strace saw (its path, via ``-y``) or from what the kill left (``step_of``). After
each restart: READY=1 again, by itself. At the end: a clean run until everything is filed,
``status`` healthy, a SIGTERM stop, ``invariants.check(settled=True)``.

Replay: ``run(seed=S, ...)`` with the same arguments repeats the same workload and the same
aims (timing is the machine's, so a time-aimed kill may fall a little elsewhere).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign import harness, invariants, workload
from campaign.harness import CampaignDaemon, Inject

# (syscall, highest N per file of the slice) for kills counted from READY, per thread (as
# strace counts): from a traced run of 30 files, the main thread makes ~2 renameat2 (publish,
# claim), ~1 unlink, ~2.5 fsync, ~1 fdatasync and ~12 pwrite64 (the register's WAL) per file;
# each store thread ~1 write, ~2 read, ~3 pread64 and ~1 fsync (copy and its folders).
RUN_AIMS: list[tuple[str, float]] = [
    ("openat", 4), ("read", 4), ("pread64", 5), ("write", 2.5), ("fsync", 2.5), ("fdatasync", 1),
    ("pwrite64", 10), ("renameat2", 2), ("unlink", 1), ("rename", 0.3),
]
BOOT_AIMS: list[tuple[str, int]] = [("fsync", 12), ("fdatasync", 6), ("renameat2", 6), ("unlink", 4), ("pwrite64", 20)]
EVENTS = ["document.registered", "document.encrypted", "document.duplicate", "document.review"]
DRIVE_AIMS: list[tuple[str, int]] = [("syncfs", 3), ("renameat2", 12), ("write", 40), ("read", 60), ("fdatasync", 6),
                                     ("pwrite64", 20), ("fsync", 10), ("openat", 40)]


@dataclass
class Kill:
    round: int
    aim: str
    hit: bool  # the aimed kill happened (else the round ended with a plain SIGKILL)
    step: str
    call: str | None
    violations: list[str]
    recovery: float | None = None  # seconds from the next start to READY=1


@dataclass
class Result:
    seed: int
    files: int = 0
    kills: list[Kill] = field(default_factory=list)
    final: list[str] = field(default_factory=list)
    health: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def violations(self) -> list[str]:
        return [v for k in self.kills for v in k.violations] + self.final + self.health

    def steps(self) -> Counter[str]:
        return Counter(k.step for k in self.kills)

    def summary(self) -> dict[str, Any]:
        rec = sorted(k.recovery for k in self.kills if k.recovery is not None)
        return {
            "seed": self.seed, "files": self.files, "kills": len(self.kills),
            "aimed_hits": sum(k.hit for k in self.kills), **invariants.tally(self.violations),
            "health": len(self.health),
            "recovery_p50": rec[len(rec) // 2] if rec else None, "recovery_max": rec[-1] if rec else None,
            "steps": dict(sorted(self.steps().items())), "elapsed": round(self.elapsed, 1),
        }


def step_of(call: str | None, cfg: Any, drive: Path | None = None) -> str | None:
    """Which pipeline step a system call belongs to, by the paths strace printed."""
    if not call:
        return None
    name = call.split("(", 1)[0]
    drop, archive, state = str(cfg.drop), str(cfg.archive), str(cfg.state)
    if drive is not None and str(drive) in call:
        return {"syncfs": "drive flush (syncfs)", "renameat2": "drive rename", "write": "drive copy",
                "read": "drive read-back", "fsync": "drive flush (syncfs)"}.get(name, f"drive {name}")
    if "register.sqlite3" in call:
        return "register transaction"
    if name == "renameat2" or name == "rename":
        if f"{archive}/" in call and "/.naskahd-tmp-" in call:
            return "rename into the archive"
        if "/.naskahd-hold/" in call:
            if "/duplikat/" in call:
                return "move to duplicates"
            if "/tinjau/" in call:
                return "move to review"
            first = call.split('"')[1] if '"' in call else ""
            return "put back from hold" if "/.naskahd-hold/" in first else "claim the source (into hold)"
        if f"{state}/" in call:
            return "heartbeat"
        return f"{name} (other)"
    if name == "unlink":
        if "/.naskahd-hold/" in call:
            return "remove the source"
        if "/.naskahd-tmp-" in call:
            return "remove an orphan temp"
        return "unlink (other)"
    if name in ("fsync", "fdatasync"):
        if "/.naskahd-tmp-" in call and f"{archive}/" in call:
            return "fsync the archive copy"
        if f"{state}/" in call:
            return "heartbeat"
        if f"{drop}" in call:
            return "fsync drop/hold folders"
        if archive in call:
            return "fsync archive folders"
    if name == "write" and "/.naskahd-tmp-" in call and archive in call:
        return "early/step-1 copy or encryption (write)"
    if name in ("read", "pread64"):
        if f"{drop}/" in call:
            return "hashing / content check (read)"
        if "/.naskahd-tmp-" in call:
            return "read-back of the copy"
    if name == "openat" and f"{drop}/" in call:
        return "detection (open)"
    return f"{name} (other)"


def left_behind(cfg: Any) -> str:
    """What a kill left, for a kill not aimed at a call: the furthest step in flight."""
    import sqlite3

    staged = 0
    if cfg.register_path.exists():
        con = sqlite3.connect(cfg.register_path, timeout=30)
        try:
            staged = con.execute("SELECT count(*) FROM documents WHERE state = 'staged'").fetchone()[0]
        finally:
            con.close()
    held = any(p.is_file() for p in cfg.hold_dir.rglob("*")) if cfg.hold_dir.exists() else False
    temps = any(p.name.startswith(invariants.TEMP_PREFIX) for p in cfg.archive.rglob("*"))
    if held:
        return "claim/removal (a source in hold)"
    if staged:
        return "between commit and FILED (staged rows)"
    if temps:
        return "copy/encrypt (temp files)"
    return "detection / settling (nothing in flight)"


class Campaign:
    def __init__(self, root: Path, *, seed: int, rounds: int, files_per_round: int = 6, settle: float = 0.3,
                 big_mb: float = 3.0, status_every: int = 1, reuse_share: float = 0.3, log: Callable[[str], None] = print) -> None:
        from naskahd.config import load

        self.root, self.seed, self.rounds = root, seed, rounds
        self.files_per_round = files_per_round
        self.reuse_share = reuse_share  # rounds that drop a new file under an earlier one's name
        self.status_every = status_every  # `naskahd status` after every n-th restart (it costs ~1 s of CPU)
        self.rng = random.Random(seed)
        self.big_mb = big_mb
        self.log = log
        root.mkdir(parents=True, exist_ok=True)
        self.key = root / "officer.key"
        subprocess.run(["age-keygen", "-o", str(self.key)], check=True, capture_output=True)
        recipient = next(x.split(": ")[1] for x in self.key.read_text().splitlines() if x.startswith("# public key"))
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from conftest import write_config

        self.cfg_path = write_config(root / "tree", settle=settle, recipients=[recipient], rescan=5)
        self.cfg = load(str(self.cfg_path))
        self.daemon = CampaignDaemon(self.cfg_path, logs=root / "logs", tmp=root / "tmp")
        self.items: list[workload.Item] = []
        self.droppers: list[workload.Dropper] = []
        self.drive_mp: Path | None = None
        self.drive_image: Any = None
        self.result = Result(seed)

    # -- checking ------------------------------------------------------------------------------
    def check(self, *, settled: bool = False) -> list[str]:
        for d in self.droppers:
            d.wait()
        return invariants.check(
            self.cfg, dropped=workload.expected(self.items), exempt_markers=workload.markers(self.items),
            drives=[self.drive_mp] if self.drive_mp is not None else [], identity=self.key if settled else None,
            logs=[self.daemon.logs], temp_dirs=[self.daemon.tmp], settled=settled,
        )

    def _slice(self, r: int, need: str | None = None) -> list[workload.Item]:
        """This round's files; ``need``: an event the slice must cause (a duplicate, a review
        or an exempt letter is added when the seeded mix has none)."""
        seed = self.seed * 1000 + r
        items = workload.generate(seed, self.files_per_round, prefix=f"r{r:03d}-", big_mb=self.big_mb,
                                  duplicate_share=0.1, review_share=0.05, exempt_share=0.3)
        kinds = {i.kind for i in items}
        rng = random.Random(seed)
        # A scanner that names its files SCAN0001.pdf again: a new letter under the name of
        # one taken earlier (maybe still in the holding folder, if the kill fell there).
        taken = [i for i in self.items if i.kind in ("inbound", "outbound", "exempt") and i.done.is_set()
                 and not (self.cfg.drop / i.relpath).exists() and i.relpath not in {x.relpath for x in items}]
        held = [i for i in taken if (self.cfg.hold_dir / i.relpath).exists()]  # the kill left it in hold
        if held:  # the name taken again while the daemon is down: dropped before the start
            old = rng.choice(held)
            data = workload.scan_pdf(rng, 20_000, b"")
            marks: tuple[bytes, ...] = ()
            if old.kind == "exempt":
                marks = (workload.marker(rng),)
                data = workload.scan_pdf(rng, 20_000, marks[0])
            reuse = workload.Item(old.relpath, data, old.kind, "plain", marks)
            self._drop([reuse], r)
            self.log(f"round {r:3d}: a new file under the held name of an earlier one")
        elif taken and rng.random() < self.reuse_share:
            old = rng.choice(taken)
            secret, name = workload.marker(rng), b""
            data = workload.scan_pdf(rng, 30_000, secret if old.kind == "exempt" else b"")
            items.append(workload.Item(old.relpath, data, old.kind, "plain", (secret,) if old.kind == "exempt" else ()))
        if need == "document.duplicate" and "duplicate" not in kinds:
            first = next((i for i in items + self.items if i.kind in ("inbound", "outbound")), None)
            if first is not None:
                items.append(workload.Item(f"masuk/r{r:03d}-salinan {rng.randbytes(3).hex()}.pdf", first.data, "duplicate", "plain"))
        if need == "document.review" and "review" not in kinds:
            items.append(workload.Item(f"r{r:03d}-tanpa folder.pdf", workload.scan_pdf(rng, 5000), "review", "plain"))
        if need == "document.encrypted" and "exempt" not in kinds:
            secret, name = workload.marker(rng), workload.marker(rng)
            items.append(workload.Item(f"dikecualikan/r{r:03d} {name.decode()}.pdf", workload.scan_pdf(rng, 50_000, secret),
                                       "exempt", "plain", (secret, name)))
        return items

    def _drop(self, items: list[workload.Item], r: int) -> None:
        earlier = {i.relpath for i in self.items}
        # a name used again only while it is free (a start-up may have put its first file back)
        items[:] = [i for i in items if not (i.relpath in earlier and (self.cfg.drop / i.relpath).exists())]
        self.items += items  # what the checks expect from now on
        self.droppers.append(workload.drop(items, self.cfg.drop, staging=self.root / "tree" / "staging",
                                           seed=self.seed * 1000 + r))

    # -- one round -----------------------------------------------------------------------------
    def _attach(self, inject: Inject) -> subprocess.Popen[bytes]:
        pid = self.daemon.daemon_pid()
        assert pid is not None
        out = self.daemon.traces / f"strace-attach-{self.daemon.runs}.txt"
        self.daemon.strace_out = out
        tracer = subprocess.Popen(
            ["strace", "-f", "-y", "-o", str(out), "-p", str(pid), "-e", f"trace={inject.syscall}",
             "-e", f"inject={inject.syscall}:signal=KILL:when={inject.when}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert tracer.stderr is not None
        os.set_blocking(tracer.stderr.fileno(), False)
        deadline, seen = time.monotonic() + 10, b""
        while time.monotonic() < deadline and b"attached" not in seen:  # "Process N attached with K threads"
            time.sleep(0.02)
            seen += tracer.stderr.read() or b""
        return tracer

    def _kill_round(self, r: int, kind: str, detail: str | None = None) -> Kill:
        d, rng = self.daemon, self.rng
        t0 = time.monotonic()
        items = self._slice(r, need=detail if kind == "event" else None)
        tracer: subprocess.Popen[bytes] | None = None
        hit, aim, call = False, kind, None
        if kind == "boot":
            syscall, top = next(a for a in BOOT_AIMS if a[0] == detail) if detail else rng.choice(BOOT_AIMS)
            inject = Inject(syscall, rng.randint(1, top))
            aim = f"boot:{inject.describe()}"
            self._drop(items, r)  # dropped while the daemon is down: the catch-up scan takes them
            d.start(inject=inject)
            hit = self._wait_boot_kill()
            call = d.killed_at() if hit else None
        else:
            d.start()
            recovery = d.wait_ready(90)
            self._after_restart(recovery)
            if kind in ("run", "drive"):
                if kind == "drive":
                    syscall, top = next(a for a in DRIVE_AIMS if a[0] == detail) if detail else rng.choice(DRIVE_AIMS)
                else:
                    syscall, per_file = next(a for a in RUN_AIMS if a[0] == detail) if detail else rng.choice(RUN_AIMS)
                    top = max(1, round(per_file * len(items)))
                inject = Inject(syscall, rng.randint(1, top))
                aim = f"{kind}:{inject.describe()}"
                if kind == "drive":  # the slice filed first: the sync then has something to copy
                    self._drop(items, r)
                    d.wait_for(lambda: all(it.done.is_set() and not (self.cfg.drop / it.relpath).exists() for it in items), 30)
                    self._drive_idle()
                    tracer = self._attach(inject)
                    reports = len(d.find("drive.report"))
                    self._remount()
                    hit = self._wait_kill([], done=lambda: len(d.find("drive.report")) > reports, limit=30)
                else:
                    tracer = self._attach(inject)
                    self._drop(items, r)
                    hit = self._wait_kill(items)
                if hit:
                    tracer.wait(10)
                    call = d.killed_at()
            elif kind == "event":
                name = detail or rng.choice(EVENTS)
                aim = f"event:{name}"
                before = len(d.find(name))
                self._drop(items, r)
                hit = bool(d.wait_for(lambda: len(d.find(name)) > before, 8))
            else:
                delay = rng.uniform(0.0, 1.2)
                aim = f"time:{delay:.2f}s"
                self._drop(items, r)
                time.sleep(delay)
                hit = d.alive()
            if d.alive():
                d.kill()
            if tracer is not None and tracer.poll() is None:
                tracer.kill()
                tracer.wait()
        if d.proc is not None:
            d.kill()
        step = step_of(call, self.cfg, self.drive_mp) if call else None
        step = step or left_behind(self.cfg)
        if kind == "drive" and not step.startswith("drive"):
            step = f"drive sync: {step}"
        if kind == "boot" and hit:
            step = f"start-up: {step}"
        t_check = time.monotonic()
        violations = self.check()
        t_check = time.monotonic() - t_check
        k = Kill(r, aim, hit, step, call, violations)
        self.log(f"round {r:3d} seed {self.seed} {aim:24s} hit={hit!s:5s} {time.monotonic() - t0:4.1f}s (check {t_check:.1f}s) {step}" + (f"  VIOLATIONS {violations}" if violations else ""))
        return k

    def _wait_boot_kill(self, limit: float = 20.0) -> bool:
        """True when the injected kill came before READY=1 and a second after it."""
        d = self.daemon
        deadline, ready = time.monotonic() + limit, None
        while time.monotonic() < deadline:
            if d.wait_exit(0.05):
                return True
            if ready is None and d.notify.ready_since(d.started_at) is not None:
                ready = time.monotonic()
            if ready is not None and time.monotonic() - ready > 1.0:
                return False
        return False

    def _wait_kill(self, items: list[workload.Item], limit: float = 12.0, done: Callable[[], bool] | None = None) -> bool:
        """True when the injected kill came; False once the slice is filed (or ``done``),
        and half a second more has passed, or ``limit`` is over: the round ends with a plain
        SIGKILL."""
        d = self.daemon
        deadline, quiet_since = time.monotonic() + limit, None
        while time.monotonic() < deadline:
            if d.wait_exit(0.05):
                return True
            if done() if done is not None else all(it.done.is_set() and not (self.cfg.drop / it.relpath).exists() for it in items):
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 0.5:
                    return False
        return False

    def _after_restart(self, recovery: float) -> None:
        """Right after a restart: READY came (``recovery`` s after the start); the daemon
        holds its lock; the invariants hold while it runs (with the previous kill's)."""
        from naskahd import state

        if not self.result.kills:
            return
        last = self.result.kills[-1]
        last.recovery = recovery
        if not state.daemon_running(self.cfg.state):
            last.violations.append("leftover: after the restart the daemon holds no instance lock")
        last.violations += [f"{v} (while running, after the restart)" for v in self.check()]
        review = any(i.kind == "review" for i in self.items)
        if len(self.result.kills) % self.status_every == 0:
            self.result.health += [f"{p} (after the restart following round {last.round}, {last.aim})"
                                   for p in harness.health(self.cfg_path, review_expected=review)]

    # -- the drive -----------------------------------------------------------------------------
    def attach_drive(self, drives: Any) -> None:
        """A registered ext4 drive on a loop device (tests/drives_fixtures.py), mounted."""
        image = drives.make("ext4", size_mb=256)
        image.attach()
        mp = image.mount(self.root / "mnt")
        self.daemon.start()  # the register exists once a daemon ran
        self.daemon.wait_ready(90)
        self.daemon.stop()
        out = subprocess.run(harness.naskahd_cmd("--config", str(self.cfg_path), "drive", "register", str(mp), "--name", "safe1"),
                             capture_output=True, text=True, timeout=120, env={**os.environ, "LANG": "C.UTF-8"})
        assert out.returncode == 0, out.stderr
        self.drive_image, self.drive_mp = image, mp

    def _drive_idle(self) -> None:
        """Wait until the sync a start-up began (the drive was mounted) has reported."""
        d = self.daemon
        d.wait_for(lambda: d.find("drives.watching"), 30)
        # Right after that line, on its thread, the watcher syncs the drive it finds mounted
        # (it is, whenever a round starts the daemon): that sync's report is waited for.
        if self.drive_mp is not None and os.path.ismount(self.drive_mp):
            d.wait_for(lambda: d.find("drive.report") or d.find("drive.sync_failed"), 60)
        else:
            time.sleep(0.5)
        d.wait_for(lambda: len(d.find("drive.sync_started")) <= len(d.find("drive.report")), 60)

    def _remount(self) -> None:
        """A new mount of the registered drive: the daemon's watcher syncs it. The sync the
        start-up began (the drive was mounted) is let finish first: a busy drive cannot be
        unmounted, and a lazy unmount is the fault campaign's business."""
        assert self.drive_image is not None and self.drive_mp is not None
        d = self.daemon
        if d.alive():
            self._drive_idle()
        for _attempt in range(100):
            if subprocess.run(["umount", str(self.drive_mp)], capture_output=True).returncode == 0 or not os.path.ismount(self.drive_mp):
                break
            time.sleep(0.1)
        self.drive_image.mountpoint = None
        self.drive_image.mount(self.drive_mp)

    # -- the whole campaign --------------------------------------------------------------------
    def plan(self) -> list[tuple[str, str | None]]:
        """Every aim once (each syscall counted from READY, each at start-up, each event,
        each drive call), then random ones; shuffled by the seed."""
        base: list[tuple[str, str | None]] = [("run", s) for s, _n in RUN_AIMS] + [("boot", s) for s, _n in BOOT_AIMS]
        base += [("event", e) for e in EVENTS] + [("time", None)] * 3
        if self.drive_mp is not None:
            base += [("drive", s) for s, _n in DRIVE_AIMS]
        extra = [self.rng.choice(["run", "run", "run", "boot", "event", "time"] + (["drive"] if self.drive_mp else []))
                 for _ in range(max(0, self.rounds - len(base)))]
        plan = base[:self.rounds] if self.rounds < len(base) else base + [(k, None) for k in extra]
        if self.rounds < len(base):
            plan = self.rng.sample(base, self.rounds)
        self.rng.shuffle(plan)
        return plan

    def run(self) -> Result:
        t0 = time.monotonic()
        plan = self.plan()
        try:
            for r, (kind, detail) in enumerate(plan):
                self.result.kills.append(self._kill_round(r, kind, detail))
            final, health = self._finish()
            self.result.final = final
            self.result.health += health
        finally:
            self.daemon.close()
        self.result.files = len(self.items)
        self.result.elapsed = time.monotonic() - t0
        return self.result

    def _finish(self) -> tuple[list[str], list[str]]:
        d = self.daemon
        d.start()
        self._after_restart(d.wait_ready(120))
        for dr in self.droppers:
            dr.wait()

        def done() -> bool:
            for f in ("masuk", "keluar", "dikecualikan"):
                if any(p.is_file() for p in (self.cfg.drop / f).rglob("*")):
                    return False
            return not (self.cfg.hold_dir.exists() and any(p.is_file() for p in self.cfg.hold_dir.rglob("*")))

        d.wait_for(done, 180)
        if self.drive_mp is not None:
            self._drive_idle()
            before = len(d.find("drive.report"))
            self._remount()
            d.wait_for(lambda: len(d.find("drive.report")) > before, 120)
        time.sleep(0.5)
        health = harness.health(self.cfg_path, review_expected=any(i.kind == "review" for i in self.items))
        rc = d.stop()
        if rc != 0:
            health.append(f"the daemon's SIGTERM exit code was {rc}")
        return self.check(settled=True), health


def run(root: Path, *, seed: int, rounds: int, files_per_round: int = 6, drives: Any = None,
        big_mb: float = 3.0, status_every: int = 1, reuse_share: float = 0.3, keep: bool = False, log: Callable[[str], None] = print) -> Result:
    """One campaign (see the module's docstring); ``drives``: a ``drives_fixtures.Drives`` to
    make the registered ext4 drive on a loop device (None: no drive rounds)."""
    c = Campaign(root, seed=seed, rounds=rounds, files_per_round=files_per_round, big_mb=big_mb,
                 status_every=status_every, reuse_share=reuse_share, log=log)
    if drives is not None:
        c.attach_drive(drives)
    c.log(f"crash campaign: seed {seed}, {rounds} rounds of {files_per_round} files, tree {root} "
          f"(replay: NASKAHD_CRASH_SEED={seed} for the test, --seed {seed} for bench/campaign_crash.py)")
    try:
        return c.run()
    finally:
        if not keep and not c.result.violations:
            shutil.rmtree(root / "tree", ignore_errors=True)
