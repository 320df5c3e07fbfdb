"""The power-loss campaign (issue 22): the archive and the state folder on powerfs, the real
daemon filing a seeded workload, the power cut at an aimed call, the daemon SIGKILLed in the
same instant (by powerfs itself, before the call returns), the filesystem remounted with
only what was durable, the daemon started again, the invariants checked twice: on what the
cut left (before any recovery) and once the restarted daemon has filed everything.

    result = run(root, seed=7, cuts=10, files=6)
    assert not result.violations

The drop folder stays on the normal disk: files a scanner wrote there but that its own
disk lost at the cut are the scanner's to send again, not naskahd's to keep. That is the
harsher case for "nothing lost" (a removed source is gone for good), never the easier.

Each cut's ``Point``: a call kind (``fsync``, ``fsyncdir``, ``rename``, ``create``,
``write``, ``unlink``), a glob on the powerfs path, which occurrence, before or after it
takes effect. ``POINTS`` aims at every step: the copy's temp file appearing, its fsync, the
register's WAL written and fsynced (mid-commit and right after the commit), the final
rename and its folder's fsync, the heartbeat and the other state files. The occurrence is
drawn (seeded) from 1 to a little more than a calibration run saw; a cut that does not
come while the round's files are filed is made by command then (an idle cut).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign import invariants, workload
from campaign.harness import CampaignDaemon, health
from powerfs import PowerMount


@dataclass(frozen=True)
class Point:
    kind: str
    match: str
    phase: str = "before"
    label: str = ""
    n: int = 0  # which occurrence; 0: drawn (seeded) from what the calibration round saw

    def describe(self, n: int) -> str:
        return f"{self.label or self.kind} #{n} ({self.kind} {self.match}, {self.phase})"


POINTS = (
    Point("create", "/archive/*/.naskahd-tmp-*", "after", "temp file appears"),
    Point("write", "/archive/*/.naskahd-tmp-*", "before", "copy being written"),
    Point("fsync", "/archive/*/.naskahd-tmp-*", "before", "copy fsync"),
    Point("fsync", "/archive/*/.naskahd-tmp-*", "after", "copy fsynced"),
    Point("write", "/state/register.sqlite3-wal", "before", "register commit being written"),
    Point("write", "/state/register.sqlite3-wal", "after", "register commit written, not synced"),
    Point("fsync", "/state/register.sqlite3-wal", "before", "register WAL fsync"),
    Point("fsync", "/state/register.sqlite3-wal", "after", "register committed"),
    Point("rename", "/archive/*", "before", "final rename"),  # renameat2(RENAME_NOREPLACE), durable.py
    Point("rename", "/archive/*", "after", "renamed, folder not synced"),
    Point("unlink", "/archive/*/.naskahd-tmp-*", "after", "temp file removed, folder not synced"),
    Point("fsyncdir", "/archive/*", "before", "archive folder fsync"),
    Point("fsyncdir", "/archive/*", "after", "archive folder synced"),
    Point("mkdir", "/archive/*", "after", "month folder made"),
    Point("fsync", "/state/*", "after", "any state fsync"),
    Point("rename", "/state/daemon.json", "before", "heartbeat rename", n=1),  # its temp file durable, not renamed
    Point("rename", "/state/*", "after", "state file renamed"),
    Point("unlink", "/*", "before", "an unlink"),
    Point("rmdir", "/never", "before", "after everything was filed"),  # never comes: the cut is made by command
)


@dataclass
class Cut:
    round: int
    point: str
    fired: bool
    hit: str
    violations_at_cut: list[str]
    violations_after: list[str]
    recovery_s: float
    files: int


@dataclass
class Result:
    seed: int
    cuts: list[Cut] = field(default_factory=list)
    files: int = 0
    wall_s: float = 0.0

    @property
    def violations(self) -> list[str]:
        return [f"round {c.round} [{c.point}; hit {c.hit}]: {v}" for c in self.cuts
                for v in c.violations_at_cut + c.violations_after]

    def figures(self) -> dict[str, Any]:
        t = invariants.tally(v.split("]: ", 1)[1] for v in self.violations)
        rec = sorted(c.recovery_s for c in self.cuts)
        return {
            "seed": self.seed, "cuts": len(self.cuts), "fired": sum(c.fired for c in self.cuts), "files": self.files,
            **t, "recovery_s_median": rec[len(rec) // 2] if rec else None, "recovery_s_max": rec[-1] if rec else None,
            "wall_s": round(self.wall_s, 1),
        }


def officer_key(root: Path) -> tuple[Path, str]:
    key = root / "officer.key"
    root.mkdir(parents=True, exist_ok=True)
    if not key.exists():
        subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = next(line.split(": ", 1)[1] for line in key.read_text().splitlines() if line.startswith("# public key: "))
    return key, recipient


class PowerTree:
    """``root``: naskahd.toml, drop/ (normal disk), power/ (powerfs: archive/, state/), logs/, tmp/."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        from conftest import write_config

        self.root = root
        self.key, recipient = officer_key(root)
        self.config = write_config(root, settle=0.3, recipients=[recipient])
        self.power = PowerMount(root / "power", root / "powerfs").mount()
        text = self.config.read_text()
        text = text.replace('archive = "archive"', 'archive = "power/archive"').replace('state = "state"', 'state = "power/state"')
        self.config.write_text(text)
        for role in ("archive", "state"):  # the roots and their markers move onto powerfs, then all is synced
            shutil.copytree(root / role, self.power.mountpoint / role)
            shutil.rmtree(root / role)
        self.power.sync()
        self.daemon = CampaignDaemon(self.config, logs=root / "logs", tmp=root / "tmp", env=env)

    @property
    def drop(self) -> Path:
        return self.root / "drop"

    def close(self) -> None:
        self.daemon.close()
        self.power.unmount()


def _waiting(drop: Path) -> list[Path]:
    """Files in the category folders (not review, duplicates, held): still to be filed."""
    out = []
    for sub in workload.FOLDERS.values():
        for dirpath, _dirs, names in os.walk(drop / sub):
            out += [Path(dirpath) / n for n in names if not n.endswith(".part")]
    return out


def _held(drop: Path) -> bool:
    return any(names for _d, _s, names in os.walk(drop / ".naskahd-hold"))


def _settle(tree: PowerTree, timeout: float) -> bool:
    """Until nothing waits in the drop folder (and the daemon is still alive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not tree.daemon.alive():
            return False
        if not _waiting(tree.drop) and not _held(tree.drop):
            time.sleep(0.5)  # the last batch's step 5
            return not _waiting(tree.drop)
        time.sleep(0.1)
    return False


# The short run in CI (tests/test_power_loss.py, ~2 minutes): one cut at each step boundary
# that decides durability; the long run (bench/campaign_power.py) aims at every POINT.
SHORT = tuple(p for p in POINTS if p.label in (
    "copy fsync", "copy fsynced", "register commit being written", "register committed",
    "final rename", "renamed, folder not synced", "archive folder fsync", "any state fsync",
    "after everything was filed",
))


def calibrate(tree: PowerTree, items: list[workload.Item]) -> dict[Point, int]:
    """How often each point's call happens while ``items`` are filed (no cut)."""
    import fnmatch

    before = len(tree.power.trace())
    workload.drop(items, tree.drop, staging=tree.root / "staging", seed=0).wait()
    _settle(tree, 120)
    trace = tree.power.trace()[before:]
    return {p: max(1, sum(1 for k, path in trace if k == p.kind and fnmatch.fnmatch(path, p.match))) for p in POINTS}


def run(root: Path, *, seed: int, cuts: int, files: int, settle_timeout: float = 120, log: Any = None,
        points: tuple[Point, ...] = POINTS, env: dict[str, str] | None = None) -> Result:
    """``cuts`` rounds of ``files`` new files each on one tree under ``root``: each of
    ``points`` once in turn, then points drawn at random."""
    t0 = time.monotonic()
    rng = random.Random(seed)
    result = Result(seed)
    tree = PowerTree(root, env)
    dropped: dict[str, bytes | str] = {}
    markers: list[bytes] = []
    try:
        tree.daemon.start()
        tree.daemon.wait_ready(60)
        first = workload.generate(seed, files, prefix="c0-", big_share=0.05, big_mb=2.0)
        dropped.update({it.relpath: it.data for it in first})
        markers += workload.markers(first)
        counts = calibrate(tree, first)
        result.files += len(first)
        for r in range(1, cuts + 1):
            point = points[r - 1] if r <= len(points) else rng.choice(POINTS)
            n = point.n or rng.randint(1, counts[point])
            items = workload.generate(seed * 1000 + r, files, prefix=f"c{r}-", big_share=0.05, big_mb=2.0)
            for it in items:
                dropped.setdefault(it.relpath, it.data)
            markers += workload.markers(items)
            result.files += len(items)
            pid = tree.daemon.daemon_pid()
            assert pid is not None, tree.daemon.log_tail()
            tree.power.arm(point.kind, n, match=point.match, phase=point.phase, victims=[pid])
            dropper = workload.drop(items, tree.drop, staging=tree.root / "staging", seed=seed + r)
            fired = _wait_cut(tree, dropper, settle_timeout)
            stats = tree.power.stats()
            if not fired:
                tree.power.cut(victims=[pid])  # an idle cut: everything was filed before the point came
            dropper.wait()
            tree.daemon.kill()
            hit = (stats.get("fired") or {}).get("path", "") or "(idle)"
            tree.power.remount()
            at_cut = _check_at_cut(tree, dropped, markers)
            started = time.monotonic()
            tree.daemon.start()
            after: list[str] = []
            try:
                tree.daemon.wait_ready(60)
                recovery = time.monotonic() - started
            except AssertionError as exc:
                recovery = time.monotonic() - started
                after.append(f"lost: the daemon did not become READY after the cut: {str(exc)[-1500:]}")
            if not after:
                if not _settle(tree, settle_timeout):
                    after.append(f"leftover: files still wait in the drop folder {settle_timeout}s after the restart: "
                                 f"{[str(p.relative_to(tree.drop)) for p in _waiting(tree.drop)][:5]}")
                # the real age decrypts every exempt letter after the last round (each round checks
                # the .age files' hashes; age -d on all of them every round would cost minutes)
                after += invariants.check(tree.config, dropped=dropped, exempt_markers=markers,
                                          identity=tree.key if r == cuts else None,
                                          logs=[tree.daemon.log_path], temp_dirs=[tree.daemon.tmp], settled=True)
                after += health(tree.config, review_expected=True)
                after += state_leftovers(tree)
            cut = Cut(r, point.describe(n), bool(fired), hit, at_cut, after, round(recovery, 2), len(items))
            result.cuts.append(cut)
            if log is not None:
                log(json.dumps({"round": r, "point": cut.point, "fired": cut.fired, "hit": hit,
                                "violations": cut.violations_at_cut + cut.violations_after, "recovery_s": cut.recovery_s}))
            if not tree.daemon.alive():
                break
    finally:
        tree.close()
        result.wall_s = time.monotonic() - t0
    return result


def state_leftovers(tree: PowerTree) -> list[str]:
    """Temp files a cut left in the state folder (the heartbeat's, the owner file's) that the
    restarted daemon did not remove (invariants.check looks at the archive's)."""
    state = tree.power.mountpoint / "state"
    return [f"leftover: temp file state/{name} after the restart" for name in sorted(os.listdir(state))
            if name.startswith(invariants.TEMP_PREFIX)]


def _check_at_cut(tree: PowerTree, dropped: dict[str, bytes | str], markers: list[bytes]) -> list[str]:  # noqa: D401
    """The invariants on what the cut left, before any recovery. A register the cut caught
    before its tables were made (a first start) holds no row yet: then only the drop folder
    and the leak search say anything."""
    import sqlite3

    try:
        return invariants.check(tree.config, dropped=dropped, exempt_markers=markers,
                                logs=[tree.daemon.log_path], temp_dirs=[tree.daemon.tmp])
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            return [f"corrupt: the register cannot be read after the cut: {exc}"]
        register = tree.power.mountpoint / "state" / "register.sqlite3"
        aside = register.with_name("unreadable-at-cut")  # checked without it, put back before the restart
        os.rename(register, aside)
        try:
            return invariants.check(tree.config, dropped=dropped, exempt_markers=markers,
                                    logs=[tree.daemon.log_path], temp_dirs=[tree.daemon.tmp])
        finally:
            os.rename(aside, register)


def _wait_cut(tree: PowerTree, dropper: workload.Dropper, timeout: float) -> bool:
    """True when the armed cut fired (the daemon is dead); False once all was filed first."""
    deadline = time.monotonic() + timeout
    dropper.wait(timeout)
    while time.monotonic() < deadline:
        if not tree.daemon.alive() or tree.power.stats()["frozen"]:
            return True
        if not _waiting(tree.drop) and not _held(tree.drop):
            time.sleep(1.0)  # step 5 of the last batch, the heartbeat
            return not tree.daemon.alive() or bool(tree.power.stats()["frozen"])
        time.sleep(0.05)
    return bool(tree.power.stats()["frozen"])


FIRST_START_KINDS = ("fsync", "fsyncdir", "link", "rename", "create", "write", "mkdir")


def run_first_start(root: Path, *, seed: int, cuts: int, files: int, timeout: float = 90) -> Result:
    """Power cuts while a new installation's daemon starts for the first time (the register,
    its migrations, the host secret, the first heartbeat) with scans already waiting: each on
    a fresh tree, at the N-th call of a kind drawn (seeded) from what a first start does."""

    t0 = time.monotonic()
    rng = random.Random(seed)
    result = Result(seed)
    items = workload.generate(seed, files, prefix="f-", big_share=0.0)
    dropped = {it.relpath: it.data for it in items}
    markers = workload.markers(items)

    probe = PowerTree(root / "calibration")
    try:
        workload.drop(items, probe.drop, staging=probe.root / "staging", seed=seed).wait()
        probe.daemon.start()
        probe.daemon.wait_ready(60)
        _settle(probe, timeout)
        trace = probe.power.trace()
    finally:
        probe.close()
    counts = {k: sum(1 for kind, _p in trace if kind == k) for k in FIRST_START_KINDS}
    kinds = [k for k in FIRST_START_KINDS if counts[k]]

    for r in range(1, cuts + 1):
        kind = kinds[(r - 1) % len(kinds)] if r <= len(kinds) else rng.choice(kinds)
        n = rng.randint(1, counts[kind])
        phase = rng.choice(("before", "after"))
        tree = PowerTree(root / f"first-{r}")
        try:
            workload.drop(items, tree.drop, staging=tree.root / "staging", seed=seed).wait()
            tree.power.arm(kind, n, match="/*", phase=phase)  # the caller (the daemon) is the victim
            tree.daemon.start()
            deadline = time.monotonic() + timeout
            while tree.daemon.alive() and not tree.power.stats()["frozen"] and time.monotonic() < deadline:
                time.sleep(0.05)
            fired = bool(tree.power.stats()["frozen"])
            if not fired:
                tree.power.cut()
            hit = (tree.power.stats().get("fired") or {}).get("path", "") or "(idle)"
            tree.daemon.kill()
            tree.power.remount()
            at_cut = _check_at_cut(tree, dropped, markers)
            started = time.monotonic()
            tree.daemon.start()
            after: list[str] = []
            try:
                tree.daemon.wait_ready(60)
            except AssertionError as exc:
                after.append(f"lost: the daemon did not become READY after the cut: {str(exc)[-1500:]}")
            recovery = time.monotonic() - started
            if not after:
                if not _settle(tree, timeout):
                    after.append("leftover: files still wait in the drop folder after the restart")
                after += invariants.check(tree.config, dropped=dropped, exempt_markers=markers, identity=tree.key,
                                          logs=[tree.daemon.log_path], temp_dirs=[tree.daemon.tmp], settled=True)
                after += health(tree.config, review_expected=True)
                after += state_leftovers(tree)
            label = f"first start: {kind} #{n} ({phase})"
            result.cuts.append(Cut(r, label, fired, hit, at_cut, after, round(recovery, 2), len(items)))
            result.files += len(items)
        finally:
            tree.close()
    result.wall_s = time.monotonic() - t0
    return result


# Mutations of the daemon (a sitecustomize.py on its PYTHONPATH), to show that the campaign
# fails where an fsync is missing: each takes one of the daemon's fsyncs away.
MUTATIONS = {
    "no copy fsync": "import naskahd.durable as d\nimport os\n_sync = d.Staged.sync\n"
                     "def sync(self, *, folder=True):\n    real, os.fsync = os.fsync, lambda fd: None\n"
                     "    try:\n        _sync(self, folder=folder)\n    finally:\n        os.fsync = real\n"
                     "d.Staged.sync = sync\n",
    "no folder fsync": "import naskahd.durable as d\nd.fsync_dir = lambda directory: None\n",
}


def mutated_env(root: Path, mutation: str) -> dict[str, str]:
    """The daemon's environment with ``MUTATIONS[mutation]`` applied at its start."""
    folder = root / "mutation"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(MUTATIONS[mutation])
    return {"PYTHONPATH": os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])}

