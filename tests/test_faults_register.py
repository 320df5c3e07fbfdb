"""Issue 22, fault campaign: the register locked by another process, and corrupted."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Daemon, naskahd_cmd, write_config
from drives_fixtures import drives, udevd  # noqa: F401  (fixtures)
from faults import Stopwatch, figure, no_traceback, nothing_lost, status, wait_filed, wait_healthy, wait_problem

pytestmark = pytest.mark.system

# The figure, three times the register's busy timeout (register/db.py), with --long;
# in the short run 20 s, still twice the busy timeout: the commits fail and are retried.
LONG_LOCK, SHORT_LOCK = 30, 20

HOLDER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("ROLLBACK")
"""


def drop(d: Daemon, rel: str, dropped: dict[str, bytes]) -> Path:
    data = os.urandom(20_000)
    (d.drop / rel).write_bytes(data)
    dropped[rel] = data
    return d.drop / rel


def test_the_register_locked_by_another_process_for_30_s(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    lock_seconds = LONG_LOCK if request.config.getoption("--long") else SHORT_LOCK
    cfg = write_config(tmp_path / "naskahd", settle=0.3)
    d = Daemon(cfg.parent, cfg).start()
    try:
        dropped: dict[str, bytes] = {}
        drop(d, "masuk/before.pdf", dropped)
        d.wait_event("document.registered")
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(d.state / "register.sqlite3"), str(lock_seconds)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            clock = Stopwatch()
            for i in range(5):
                drop(d, f"keluar/during-{i}.pdf", dropped)
            problem = wait_problem(d, "locked by another program", timeout=lock_seconds)
            assert "close the program" in problem, problem
            failed = d.wait_event("register.commit_failed")
            assert "locked by another program" in failed["error"]
            for text in (problem, d.log_text()):  # a person's words: no SQL, no parameters, no link
                assert "INSERT" not in text and "[SQL" not in text and "sqlalche.me" not in text, text[-2000:]
            human = d.cli("status", env={"LANGUAGE": "en"})
            assert human.returncode == 1 and "locked" in human.stdout, human.stdout + human.stderr
            assert d.proc is not None and d.proc.poll() is None
            assert holder.wait(timeout=lock_seconds + 30) == 0
        finally:
            holder.kill()
        released = clock.seconds()
        d.wait_event("document.registered", count=6, timeout=120)
        wait_healthy(d)
        figure(f"register locked {lock_seconds} s", files=len(dropped), faults=1, recovery_s=round(clock.seconds() - released, 2))
        nothing_lost(d, dropped)
        no_traceback(d)
    finally:
        assert d.stop() == 0


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(naskahd_cmd("--config", str(cfg), *args), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LANG": "C.UTF-8", "LANGUAGE": "en"})


def test_a_corrupted_register_is_refused_verify_points_at_it_and_the_drive_snapshot_restores_it(tmp_path: Path, drives) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "naskahd", settle=0.2)
    d = Daemon(cfg.parent, cfg).start()
    dropped: dict[str, bytes] = {}
    for i in range(30):
        drop(d, f"{('masuk', 'keluar')[i % 2]}/letter {i}.pdf", dropped)
    wait_filed(d, len(dropped), 60)
    d.stop()
    image = drives.make("ext4")
    image.attach()
    mp = image.mount(tmp_path / "mnt")
    assert cli(cfg, "drive", "register", str(mp), "--name", "safe1").returncode == 0
    assert cli(cfg, "sync").returncode == 0
    original = json.loads(cli(cfg, "list", "--json").stdout)

    register = cfg.parent / "state" / "register.sqlite3"
    size = register.stat().st_size
    with open(register, "r+b") as f:  # every page but the header's overwritten in its middle third
        f.seek(size // 3 // 4096 * 4096)
        f.write(os.urandom(size // 3 // 4096 * 4096 or 4096))
    (d.drop / "masuk" / "after.pdf").write_bytes(b"a letter dropped while the register is damaged")

    run = subprocess.run(naskahd_cmd("--config", str(cfg), "run", "--log-format", "json"), capture_output=True,
                         text=True, timeout=60, env={**os.environ, "LANG": "C.UTF-8", "LANGUAGE": "en"})
    assert run.returncode == 1, run.stderr[-2000:]
    verify, shown = cli(cfg, "verify"), cli(cfg, "status")
    for text in (run.stderr, verify.stderr, shown.stdout):
        assert str(register) in text and "damaged" in text, text
        assert "naskahd restore --from" in text and "backup drive" in text, text  # named when its row is readable
        assert "Traceback" not in text
    assert verify.returncode == 1 and shown.returncode != 0
    assert (d.drop / "masuk" / "after.pdf").exists()  # nothing taken

    new_root = tmp_path / "restored"
    out = cli(cfg, "restore", "--from", str(mp), "--root", str(new_root))
    assert out.returncode == 0, out.stdout + out.stderr
    new_cfg = new_root / "naskahd.toml"
    assert json.loads(cli(new_cfg, "list", "--json").stdout) == original
    assert cli(new_cfg, "verify").returncode == 0
