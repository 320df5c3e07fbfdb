"""A `naskahd report` killed half-way (issue 20): its row is finished by the next report
command, never left hidden without a hash, its number never given again; a report that
another command is making meanwhile is left alone (report/unfinished.py). And the global
options after the nested report commands, end to end."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import subprocess
import termios
from pathlib import Path

from conftest import naskahd_cmd, wait_until, write_config
from reportdata import fill

PAGE = 4096


def unfinished(db: Path) -> list[int]:
    with sqlite3.connect(db) as con:
        return [r[0] for r in con.execute("SELECT id FROM reports WHERE sha256 = '' ORDER BY id")]


def pending(fd: int) -> int:
    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, "little")


def blocked_report(config: Path, month: str = "2026-11") -> tuple[subprocess.Popen[bytes], int]:
    """`naskahd report -o -` writing into a one-page pipe nobody reads: it stops in the
    middle of writing the report out, after registering its row and before recording the
    hash, which is the instant a kill leaves a row behind. Returns (process, read end)."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PAGE)
    proc = subprocess.Popen(naskahd_cmd("--lang", "en", "--config", str(config), "report", "--month", month, "-o", "-"),
                            stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    wait_until(lambda: pending(r) >= PAGE or proc.poll() is not None, 120, "the report filling the pipe")
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    return proc, r


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(naskahd_cmd(*args), capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NASKAHD_CONFIG": str(config)})


def test_a_killed_report_command_is_finished_by_the_next_one(tmp_path: Path) -> None:
    config = write_config(tmp_path / "root")
    db = tmp_path / "root" / "state" / "register.sqlite3"
    fill(f"sqlite:///{db}", 40)
    proc, r = blocked_report(config)
    assert unfinished(db) == [1], "precondition: the report's row is registered, its hash not yet"
    proc.kill()  # SIGKILL: nothing of the command runs any more
    proc.wait(timeout=30)
    head = os.read(r, PAGE)
    os.close(r)

    listed = run(config, "--lang", "en", "report", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "report 1 was left unfinished" in listed.stderr
    assert unfinished(db) == []
    rows = json.loads(listed.stdout)
    assert [x["id"] for x in rows] == [1] and len(rows[0]["sha256"]) == 64
    # Rendered again from its snapshot: the very bytes the killed command was writing out.
    shown = subprocess.run(naskahd_cmd("--config", str(config), "report", "show", "1", "-o", "-"), capture_output=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout.startswith(head)
    assert hashlib.sha256(shown.stdout).hexdigest() == rows[0]["sha256"]
    log = json.loads(run(config, "log", "--json").stdout)
    generated = [e for e in log if e["event"] == "report.generated"]
    assert len(generated) == 1 and generated[0]["details"]["finished_later"] is True, generated
    assert run(config, "verify", "--audit").returncode == 0
    # Its number is never given again.
    made = run(config, "--lang", "en", "report", "--month", "2026-11", "--format", "csv", "-o", str(tmp_path / "b.csv"))
    assert made.returncode == 0 and "Report 2 " in made.stdout, made.stdout + made.stderr


def test_a_report_being_made_meanwhile_is_left_to_its_command(tmp_path: Path) -> None:
    config = write_config(tmp_path / "root")
    db = tmp_path / "root" / "state" / "register.sqlite3"
    fill(f"sqlite:///{db}", 40)
    proc, r = blocked_report(config)
    listed = run(config, "report", "list", "--json")  # another report command, while the first one runs
    assert listed.returncode == 0 and json.loads(listed.stdout) == [] and "unfinished" not in listed.stderr
    assert unfinished(db) == [1]
    with os.fdopen(r, "rb") as pipe:  # let it finish
        content = pipe.read()
    assert proc.wait(timeout=120) == 0
    rows = json.loads(run(config, "report", "list", "--json").stdout)
    assert [x["id"] for x in rows] == [1] and rows[0]["sha256"] == hashlib.sha256(content).hexdigest()
    log = json.loads(run(config, "log", "--json").stdout)
    assert [e["event"] for e in log].count("report.generated") == 1


def test_global_options_after_nested_report_commands(tmp_path: Path) -> None:
    config = write_config(tmp_path / "root")
    fill(f"sqlite:///{tmp_path / 'root' / 'state' / 'register.sqlite3'}", 10)

    def after(*args: str) -> subprocess.CompletedProcess[str]:  # no NASKAHD_CONFIG: only the option after it
        env = {k: v for k, v in os.environ.items() if k != "NASKAHD_CONFIG"}
        return subprocess.run(naskahd_cmd(*args, "--config", str(config), "--lang", "en"), capture_output=True, text=True,
                              timeout=120, env=env)

    made = after("report", "--month", "2026-11", "--format", "json", "-o", str(tmp_path / "r.json"))
    assert made.returncode == 0 and "Report 1 " in made.stdout, made.stderr
    listed = after("report", "list")
    assert listed.returncode == 0 and "not reviewed" in listed.stdout, listed.stderr
    reviewed = after("report", "review", "1", "--by", "Budi")
    assert reviewed.returncode == 0 and "Report 1 reviewed by Budi." in reviewed.stdout, reviewed.stderr
    shown = after("report", "show", "1", "-o", str(tmp_path / "again.json"))
    assert shown.returncode == 0 and "Report 1 written to" in shown.stdout, shown.stderr
    drives = after("drive", "list")
    assert drives.returncode == 0, drives.stderr
