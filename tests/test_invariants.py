"""The campaigns' invariant checker (tests/campaign/invariants.py) must see each kind of
violation: a tree the real daemon filed is clean, and each damage done to a copy of it is
named, with its kind."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from campaign import invariants, workload
from campaign.harness import CampaignDaemon
from conftest import require_tool, write_config

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def filed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[workload.Item]]:
    """A tree where the real daemon filed a small workload (exempt letters included)."""
    require_tool("age-keygen")
    require_tool("age")
    base = tmp_path_factory.mktemp("inv")
    key = base / "officer.key"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = next(x.split(": ")[1] for x in key.read_text().splitlines() if x.startswith("# public key"))
    cfg = write_config(base / "tree", settle=0.2, recipients=[recipient])
    items = [i for i in workload.generate(7, 12, big_share=0, exempt_share=0.4, review_share=0, duplicate_share=0)]
    assert {i.kind for i in items} >= {"exempt", "inbound"}
    d = CampaignDaemon(cfg, logs=base / "tree" / "logs", tmp=base / "tree" / "tmp")
    d.start()
    d.wait_ready(60)
    workload.drop(items, cfg.parent / "drop", staging=base / "staging", seed=7).wait()
    d.wait_for(lambda: len(d.find("document.registered")) >= len(items), 60)
    assert d.stop() == 0
    d.close()
    return cfg, key, items


def copy_of(filed: tuple[Path, Path, list[workload.Item]], tmp_path: Path) -> tuple[Path, dict]:  # type: ignore[type-arg]
    cfg, key, items = filed
    tree = tmp_path / "tree"
    shutil.copytree(cfg.parent, tree, symlinks=True)
    kwargs = dict(dropped=workload.expected(items), exempt_markers=workload.markers(items), identity=key,
                  logs=[tree / "logs"], temp_dirs=[tree / "tmp"], settled=True)
    return tree / "naskahd.toml", kwargs


def rows(cfg: Path) -> list[tuple]:  # type: ignore[type-arg]
    con = sqlite3.connect(cfg.parent / "state" / "register.sqlite3")
    try:
        return con.execute("SELECT id, category, archive_path, sha256, ciphertext_sha256 FROM documents ORDER BY id").fetchall()
    finally:
        con.close()


def sql(cfg: Path, statement: str, *args: object) -> None:
    con = sqlite3.connect(cfg.parent / "state" / "register.sqlite3")
    try:
        con.execute(statement, args)
        con.commit()
    finally:
        con.close()


def kinds(violations: list[str]) -> set[str]:
    return {k for k, n in invariants.tally(violations).items() if n}


def test_a_tree_the_daemon_filed_is_clean(filed, tmp_path: Path) -> None:
    cfg, kw = copy_of(filed, tmp_path)
    assert invariants.check(cfg, **kw) == []


def test_a_missing_archive_file_is_lost_and_a_changed_one_corrupt(filed, tmp_path: Path) -> None:
    cfg, kw = copy_of(filed, tmp_path)
    ordinary = [r for r in rows(cfg) if r[1] != "exempt"]
    (cfg.parent / "archive" / ordinary[0][2]).unlink()
    with open(cfg.parent / "archive" / ordinary[1][2], "r+b") as f:
        f.write(b"X")
    got = invariants.check(cfg, **kw)
    assert kinds(got) == {"lost", "corrupt"}, got


def test_an_age_file_that_does_not_decrypt_to_the_letter_is_corrupt(filed, tmp_path: Path) -> None:
    cfg, kw = copy_of(filed, tmp_path)
    a, b = [r for r in rows(cfg) if r[1] == "exempt"][:2]
    # b's .age file under a's name, with a's recorded ciphertext hash: only decrypting tells
    shutil.copy(cfg.parent / "archive" / b[2], cfg.parent / "archive" / a[2])
    sql(cfg, "UPDATE documents SET ciphertext_sha256 = ? WHERE id = ?", b[4], a[0])
    got = invariants.check(cfg, **kw)
    assert any(v.startswith("corrupt:") and "decrypts to" in v for v in got), got


def test_a_file_dropped_but_neither_there_nor_registered_is_lost(filed, tmp_path: Path) -> None:
    cfg, kw = copy_of(filed, tmp_path)
    kw["dropped"] = {**kw["dropped"], "masuk/never.pdf": b"a letter that vanished"}
    got = invariants.check(cfg, **kw)
    assert kinds(got) == {"lost"} and len(got) == 1, got


def test_a_gap_in_the_numbers_and_a_counter_ahead_are_found(filed, tmp_path: Path) -> None:
    cfg, kw = copy_of(filed, tmp_path)
    sql(cfg, "UPDATE agenda_counters SET last_number = last_number + 1 WHERE category = 'inbound'")
    got = invariants.check(cfg, **kw)
    assert kinds(got) == {"gap"}, got
    cfg2, kw2 = copy_of(filed, tmp_path / "b")
    first = [r for r in rows(cfg2) if r[1] == "inbound"][0]
    sql(cfg2, "UPDATE documents SET number = number + 100 WHERE id = ?", first[0])
    assert "gap" in kinds(invariants.check(cfg2, **kw2))


def test_a_content_archived_twice_or_an_unowned_file_is_found(filed, tmp_path: Path) -> None:
    cfg, kw = copy_of(filed, tmp_path)
    r = [r for r in rows(cfg) if r[1] == "inbound"][0]
    src = cfg.parent / "archive" / r[2]
    shutil.copy(src, src.with_name("extra copy.pdf"))
    got = invariants.check(cfg, **kw)
    assert kinds(got) == {"duplicated", "corrupt"}, got  # archived twice, and a file no row owns


def test_registered_but_still_waiting_in_the_drop_folder_is_duplicated(filed, tmp_path: Path) -> None:
    cfg, kw = copy_of(filed, tmp_path)
    rel, (data,) = next((k, v) for k, v in kw["dropped"].items() if k.startswith(("masuk/", "keluar/")))
    (cfg.parent / "drop" / rel).parent.mkdir(parents=True, exist_ok=True)
    (cfg.parent / "drop" / rel).write_bytes(data)
    assert kinds(invariants.check(cfg, **kw)) == {"duplicated"}
    kw["settled"] = False  # right after a kill, a source still there is normal
    assert invariants.check(cfg, **kw) == []


def test_exempt_plaintext_or_an_exempt_name_outside_the_drop_folder_is_a_leak(filed, tmp_path: Path) -> None:
    cfg, kw = copy_of(filed, tmp_path)
    marker, name_marker = kw["exempt_markers"][:2]
    (cfg.parent / "state" / "cache.bin").write_bytes(b"\0" * ((1 << 20) - 3) + marker)  # across a chunk boundary
    (cfg.parent / "tmp" / f"x {name_marker.decode()}").write_bytes(b"")
    with open(cfg.parent / "logs" / "daemon.log", "ab") as log:
        log.write(json.dumps({"event": "x", "path": name_marker.decode()}).encode() + b"\n")
    got = invariants.check(cfg, **kw)
    assert kinds(got) == {"leak"} and len(got) == 3, got


def test_leftovers_count_only_once_the_daemon_finished(filed, tmp_path: Path) -> None:
    cfg, kw = copy_of(filed, tmp_path)
    r = rows(cfg)[0]
    (cfg.parent / "archive" / r[2]).with_name(".naskahd-tmp-0123456789abcdef").write_bytes(b"orphan")
    sql(cfg, "UPDATE documents SET state = 'staged' WHERE id = ?", r[0])
    assert kinds(invariants.check(cfg, **kw)) == {"leftover"}
    kw["settled"] = False
    assert invariants.check(cfg, **kw) == []


def test_a_backup_recorded_but_not_on_the_drive_is_found(filed, tmp_path: Path) -> None:
    cfg, kw = copy_of(filed, tmp_path)
    drive = tmp_path / "drive"
    (drive / "naskah" / ".naskahd").mkdir(parents=True)
    (drive / "naskah" / ".naskahd" / "token.json").write_text(json.dumps({"drive_id": "d1"}))
    docs = rows(cfg)
    sql(cfg, "INSERT INTO drives (id, name, uuid, token_id, registered_at) VALUES (1, 'safe1', 'u', 'd1', '2026-12-01 00:00:00')")
    for i, (doc_id, _c, path, sha, csha) in enumerate(docs[:3]):
        data = (cfg.parent / "archive" / path).read_bytes()
        if i < 2:  # the first two are on the drive; the second damaged
            (drive / "naskah" / path).parent.mkdir(parents=True, exist_ok=True)
            (drive / "naskah" / path).write_bytes(data if i == 0 else data[:-1] + b"?")
        sql(cfg, "INSERT INTO copies (drive_id, document_id, drive_path, size, sha256, verified_at) "
                 "VALUES (1, ?, ?, ?, ?, '2026-12-01 00:00:00')", doc_id, path, len(data), csha or sha)
    got = invariants.check(cfg, **{**kw, "drives": [drive]})
    assert kinds(got) == {"backup"} and len(got) == 2, got
