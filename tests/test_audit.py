"""The audit trail's hash chain: tampering behind naskahd's back is found and named."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import naskahd_cmd, write_config
from naskahd import audit
from naskahd.register import open_register


def make_register(root: Path, n: int = 6) -> tuple[Path, Path]:
    config = write_config(root)
    db = root / "state" / "register.sqlite3"
    sessions = open_register(f"sqlite:///{db}")
    for i in range(1, n + 1):
        with sessions.begin() as s:
            audit.record(s, "document.filed", agenda=f"{i:04d}/M/2026", category="inbound", size=100 + i)
    return config, db


def verify(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(naskahd_cmd("--lang", "en", "--config", str(config), "verify", *extra),
                          capture_output=True, text=True, timeout=60)


def verify_json(config: Path, *extra: str) -> tuple[int, dict]:
    proc = verify(config, "--audit", "--json", *extra)
    return proc.returncode, json.loads(proc.stdout)["audit"]


def test_an_untouched_chain_verifies(tmp_path: Path) -> None:
    config, _db = make_register(tmp_path)
    proc = verify(config, "--audit")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Audit trail intact: 6 rows, head 6:" in proc.stdout
    assert verify(config).returncode == 0  # without a flag every check runs, the chain among them
    rc, info = verify_json(config)
    assert rc == 0 and info["ok"] and info["rows"] == 6 and info["broken_row"] is None


@pytest.mark.parametrize("column,value", [
    ("details", '{"agenda":"0003/M/2026","category":"inbound","size":999}'),
    ("event", "document.duplicate"),
    ("at", "2020-01-01 00:00:00.000000"),
    ("actor", "someone"),
])
def test_a_changed_row_is_named(tmp_path: Path, column: str, value: str) -> None:
    config, db = make_register(tmp_path)
    with sqlite3.connect(db) as c:
        assert c.execute(f"UPDATE audit_events SET {column} = ? WHERE seq = 3", (value,)).rowcount == 1
    rc, info = verify_json(config)
    assert rc == 1 and info["broken_row"] == 3 and info["kind"] == "changed", info
    proc = verify(config, "--audit")
    assert proc.returncode == 1 and "BROKEN at row 3" in proc.stdout, proc.stdout
    indonesian = subprocess.run(naskahd_cmd("--lang", "id", "--config", str(config), "verify", "--audit"),
                                capture_output=True, text=True, timeout=60)
    assert indonesian.returncode == 1 and "baris 3" in indonesian.stdout, indonesian.stdout


def test_a_changed_row_with_its_hash_recomputed_breaks_the_next_row(tmp_path: Path) -> None:
    config, db = make_register(tmp_path)
    with sqlite3.connect(db) as c:
        seq, at, event, actor, _details, prev = c.execute(
            "SELECT seq, at, event, actor, details, prev_sha256 FROM audit_events WHERE seq = 2").fetchone()
        details = '{"agenda":"0002/M/2026","category":"outbound","size":102}'
        when = dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC)
        c.execute("UPDATE audit_events SET details = ?, sha256 = ? WHERE seq = 2",
                  (details, audit.row_hash(seq, when, event, actor, details, prev)))
    rc, info = verify_json(config)
    assert rc == 1 and info["broken_row"] == 3 and info["kind"] == "inserted", info


def test_a_deleted_row_is_named(tmp_path: Path) -> None:
    config, db = make_register(tmp_path)
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM audit_events WHERE seq = 4")
    rc, info = verify_json(config)
    assert rc == 1 and info["broken_row"] == 4 and info["kind"] == "missing", info


def test_a_deleted_last_row_is_found_by_the_head(tmp_path: Path) -> None:
    config, db = make_register(tmp_path)
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM audit_events WHERE seq = 6")
    rc, info = verify_json(config)
    assert rc == 1 and info["broken_row"] == 6 and info["kind"] == "missing", info


def _forge(c: sqlite3.Connection, seq: int, *, good_hash: bool) -> None:
    prev = c.execute("SELECT sha256 FROM audit_events WHERE seq = ?", (seq - 1,)).fetchone()[0]
    at = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
    details = '{"agenda":"0099/M/2026","category":"inbound"}'
    sha = audit.row_hash(seq, at, "document.filed", "daemon", details, prev) if good_hash else hashlib.sha256(b"x").hexdigest()
    c.execute("INSERT INTO audit_events (seq, at, event, actor, details, prev_sha256, sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
              (seq, at.strftime("%Y-%m-%d %H:%M:%S.%f"), "document.filed", "daemon", details, prev, sha))


@pytest.mark.parametrize("good_hash", [False, True])
def test_an_appended_forged_row_is_named(tmp_path: Path, good_hash: bool) -> None:
    config, db = make_register(tmp_path)
    with sqlite3.connect(db) as c:
        _forge(c, 7, good_hash=good_hash)
    rc, info = verify_json(config)
    assert rc == 1 and info["broken_row"] == 7, info
    assert info["kind"] == ("inserted" if good_hash else "changed")


def test_a_chain_rewritten_from_scratch_is_found_by_an_anchor(tmp_path: Path) -> None:
    """Someone with write access can rebuild the whole chain (and its head): only a head kept
    elsewhere (a validated report, a drive's anchor file) shows it."""
    config, db = make_register(tmp_path)
    sessions = open_register(f"sqlite:///{db}")
    drive = tmp_path / "drive"
    drive.mkdir()
    with sessions() as s:
        anchored = audit.write_anchor(s, drive)
    assert anchored.seq == 6
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM audit_events")
        c.execute("DELETE FROM audit_head")
    for i in range(1, 7):  # the same events, one changed, all hashes valid
        with sessions.begin() as s:
            audit.record(s, "document.filed", agenda=f"{i:04d}/M/2026", category="inbound", size=100 + (i != 3) * i)
    assert verify_json(config)[0] == 0  # the chain alone cannot tell
    anchors = drive / audit.ANCHOR_FILE
    rc, info = verify_json(config, "--anchors", str(anchors))
    assert rc == 1 and info["kind"] == "anchor" and info["broken_row"] == 6, info


def test_names_and_paths_are_refused_as_details(tmp_path: Path) -> None:
    sessions = open_register(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    for key in ("name", "path", "original_name", "source_relpath"):
        with pytest.raises(ValueError), sessions.begin() as s:
            audit.record(s, "document.filed", agenda="0001/D/2026", **{key: "rahasia.pdf"})
    with sessions() as s:
        assert audit.head(s).seq == 0  # nothing was appended


def test_an_event_rolls_back_with_its_transaction(tmp_path: Path) -> None:
    sessions = open_register(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    with pytest.raises(RuntimeError), sessions.begin() as s:
        audit.record(s, "daemon.started", pid=1)
        raise RuntimeError
    with sessions.begin() as s:
        assert audit.record(s, "daemon.started", pid=2).seq == 1
    with sessions() as s:
        assert audit.verify_chain(s).ok


def test_log_lists_the_events(tmp_path: Path) -> None:
    config, _db = make_register(tmp_path, n=3)
    proc = subprocess.run(naskahd_cmd("--config", str(config), "log", "--json"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[0]["event"] == "document.filed" and rows[0]["details"]["agenda"] == "0001/M/2026"
    assert rows[1]["prev_sha256"] == rows[0]["sha256"]
    text = subprocess.run(naskahd_cmd("--config", str(config), "log", "--since", "2000-01-01"),
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "0003/M/2026" in text.stdout
    later = subprocess.run(naskahd_cmd("--config", str(config), "log", "--since", "2999-01-01", "--json"),
                           capture_output=True, text=True, timeout=60)
    assert json.loads(later.stdout) == []


def test_a_new_register_has_its_audit_head_row_before_any_event(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The first append is then an UPDATE of that row, which locks it on PostgreSQL as on
    SQLite: two first writers can never both create it."""
    from naskahd.register import AuditHead, open_register

    sessions = open_register(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    with sessions() as s:
        (head,) = s.query(AuditHead).all()
    assert (head.id, head.seq, head.sha256) == (1, 0, "0" * 64)
