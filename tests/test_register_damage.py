"""A damaged register (issue 22): the full check where it belongs (the daemon's start,
``verify``), the cheap one everywhere else, and damage met later still said as damage."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from conftest import naskahd_cmd, write_config
from naskahd import daemoninfo, state
from naskahd.errors import RegisterDamaged, RegisterError
from naskahd.register import Document, open_register
from naskahd.register.db import integrity_problem

RESTORE = "naskahd restore --from"


def _documents(url: str, n: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with open_register(url).begin() as s:
        s.execute(insert(Document.__table__), [
            dict(agenda=f"{i:04d}/M/2026", category="inbound", year=2026, number=i, original_name=f"surat {i} " * 8,
                 source_relpath=f"masuk/surat {i}.pdf".encode(), archive_path=f"inbound/2026/12/{i:04d}-M-2026.pdf",
                 size=20_000, sha256=f"{i:064x}", received_at=now, state="filed") for i in range(1, n + 1)])


def _unread_table(path: Path) -> None:
    """A table no command reads, made last (so it is the file's tail), 2 MB."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE unread(a)")
    con.execute("INSERT INTO unread SELECT randomblob(1000) FROM "
                "(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000) SELECT i FROM c)")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _checkpointed(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _overwrite(path: Path, start: float, end: float) -> None:
    size = path.stat().st_size
    first, last = int(size * start) // 4096 * 4096, int(size * end) // 4096 * 4096
    with open(path, "r+b") as f:
        f.seek(first)
        f.write(os.urandom(last - first))


def test_damage_met_by_a_statement_is_the_registers_damage_with_the_restore(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite3"
    url = f"sqlite:///{db}"
    _documents(url, 3000)
    _checkpointed(db)
    _overwrite(db, 0.4, 0.6)  # documents' pages; the header and the schema are whole
    sessions = open_register(url, create=False)  # the cheap check: not every page is read
    with pytest.raises(RegisterDamaged) as caught, sessions() as s:
        s.scalars(select(Document)).all()
    assert str(db) in str(caught.value) and "damaged" in str(caught.value) and RESTORE in str(caught.value)
    assert integrity_problem(url) is not None
    with pytest.raises(RegisterDamaged):
        open_register(url, create=False, integrity=True)


def test_a_damaged_header_is_refused_at_opening_without_the_full_check(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite3"
    url = f"sqlite:///{db}"
    _documents(url, 10)
    _checkpointed(db)
    with open(db, "r+b") as f:
        f.write(os.urandom(100))  # SQLite's header
    for create in (False, True):
        with pytest.raises(RegisterDamaged) as caught:
            open_register(url, create=create)
        assert "damaged" in str(caught.value) and RESTORE in str(caught.value)


def cli(cfg: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(naskahd_cmd("--config", str(cfg), *args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "LANG": "C.UTF-8", "LANGUAGE": "en"})


def test_the_daemon_and_verify_check_every_page_and_status_says_why_it_did_not_start(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "naskahd", settle=0.2)
    register = cfg.parent / "state" / "register.sqlite3"
    url = f"sqlite:///{register}"
    _documents(url, 20)
    _unread_table(register)
    _overwrite(register, 0.5, 0.7)  # only the unread table's pages
    assert cli(cfg, "list", "--json").returncode == 0  # nothing it reads is damaged: no full check for it

    run = cli(cfg, "run", "--log-format", "json", timeout=60)  # a daemon that started would not return
    assert run.returncode == 1, run.stderr[-2000:]
    assert str(register) in run.stderr and "damaged" in run.stderr and RESTORE in run.stderr, run.stderr
    verify = cli(cfg, "verify")
    assert verify.returncode == 1 and "damaged" in verify.stderr and RESTORE in verify.stderr, verify.stderr
    status = cli(cfg, "status")
    assert status.returncode == 3, status.stdout + status.stderr
    assert "refused to start" in status.stdout and "damaged" in status.stdout and RESTORE in status.stdout, status.stdout
    for out in (run, verify, status):
        assert "Traceback" not in out.stdout + out.stderr


def test_the_refusal_is_shown_only_while_the_register_is_the_file_found_damaged(tmp_path: Path) -> None:
    from naskahd import config, reasons

    cfg = config.load(str(write_config(tmp_path / "naskahd")))
    open_register(cfg.database_url)
    state.write_heartbeat(cfg.state, {"running": False, "pid": 1, "stopped_at": "2026-12-01T10:00:00+00:00"})
    reason = reasons.encode("register_damaged", path=str(cfg.register_path), words="malformed",
                            drive=reasons.nested(reasons.encode("backup_drive", name="safe1")))
    state.record_refusal(cfg.state, reason, cfg.register_path)
    _fields, why = daemoninfo.stopped(cfg, state.read_heartbeat(cfg.state), str)
    assert "refused to start" in why and "damaged" in why and "the backup drive safe1" in why, why
    restored = tmp_path / "restored.sqlite3"  # a restore put in its place: another file
    restored.write_bytes(cfg.register_path.read_bytes())
    os.replace(restored, cfg.register_path)
    _fields, why = daemoninfo.stopped(cfg, state.read_heartbeat(cfg.state), str)
    assert "refused" not in why and "stopped cleanly" in why, why


def test_a_damaged_page_in_list_is_said_without_a_traceback(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "naskahd")
    register = cfg.parent / "state" / "register.sqlite3"
    _documents(f"sqlite:///{register}", 3000)
    _checkpointed(register)
    _overwrite(register, 0.4, 0.6)
    out = cli(cfg, "list", "--json")
    assert out.returncode == 1 and "damaged" in out.stderr and RESTORE in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "unexpected error" not in out.stderr
    with pytest.raises(RegisterError):
        open_register(f"sqlite:///{register}", create=False, integrity=True)
