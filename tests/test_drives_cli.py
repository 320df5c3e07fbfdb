"""Register, sync, verify and restore with the CLI on real loop-mounted filesystems."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import Daemon, naskahd_cmd, require_tool, wait_until, write_config
from drives_fixtures import drives, tree_hashes, udevd  # noqa: F401  (fixtures)

pytestmark = pytest.mark.system


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(naskahd_cmd("--config", str(cfg), *args), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LANG": "C.UTF-8"})


def filed_tree(tmp_path: Path, files: dict[str, bytes], **kw) -> tuple[Path, Daemon]:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path / "naskahd", settle=0.2, **kw)
    d = Daemon(cfg.parent, cfg).start()
    for rel, data in files.items():
        (d.drop / rel).write_bytes(data)
    wait_until(lambda: len(d.documents()) == len(files), 60, "all filed", d)
    return cfg, d


def test_register_sync_verify_and_restore_on_ext4(tmp_path: Path, drives) -> None:  # type: ignore[no-untyped-def]
    files = {f"masuk/surat {i}.pdf": f"letter {i}\n".encode() * (i + 1) for i in range(5)}
    files["keluar/balasan.txt"] = b"reply\n"
    cfg, d = filed_tree(tmp_path, files)
    d.stop()
    image = drives.make("ext4")
    image.attach()
    mp = image.mount(tmp_path / "mnt")
    out = cli(cfg, "drive", "register", str(mp), "--name", "safe1", "--install-units", str(tmp_path / "units"))
    assert out.returncode == 0, out.stderr
    token = mp / "naskah" / ".naskahd" / "token.json"
    assert token.exists()
    listed = json.loads(cli(cfg, "drive", "list", "--json").stdout)
    assert [(x["name"], x["present"], x["pending_files"]) for x in listed] == [("safe1", True, 6)]
    again = cli(cfg, "drive", "register", str(mp), "--name", "other")
    assert again.returncode == 1 and "already registered" in again.stderr

    out = cli(cfg, "sync")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "6 file(s) copied and verified" in out.stdout and "safe" in out.stdout
    docs = json.loads(cli(cfg, "list", "--json").stdout)
    for doc in docs:
        assert tree_hashes(mp / "naskah")[doc["archive_path"]] == doc["sha256"]
    listed = json.loads(cli(cfg, "drive", "list", "--json").stdout)
    assert listed[0]["pending_files"] == 0 and listed[0]["last_verified"]
    # The sync anchored the audit trail's head on the drive, and the chain holds it.
    anchors = mp / "naskah" / ".naskahd" / "naskahd-audit-anchors.txt"
    assert anchors.read_text().count("\n") == 1
    out = cli(cfg, "verify", "--audit", "--anchors", str(anchors), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["audit"]["anchors"] == 1, out.stdout
    events = [e["event"] for e in json.loads(cli(cfg, "log", "--json").stdout)]
    assert "drive.synced" in events
    out = cli(cfg, "sync", "--drive", "safe1")  # nothing new
    assert out.returncode == 0 and "0 file(s) copied" in out.stdout

    out = cli(cfg, "verify", "--json")
    assert out.returncode == 0, out.stdout
    result = json.loads(out.stdout)
    assert result["archive"]["checked"] == 6 and result["drives"]["safe1"]["checked"] == 6

    # The month's report has the drive's figures: the sync, the verification, every copy.
    import datetime as dt
    from zoneinfo import ZoneInfo

    month = dt.datetime.fromisoformat(docs[0]["received_at"]).astimezone(ZoneInfo("Asia/Jakarta")).strftime("%Y-%m")
    report = tmp_path / "report.json"
    out = cli(cfg, "report", "--month", month, "--format", "json", "-o", str(report))
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(report.read_text(encoding="utf-8"))["data"]
    backup = data["backup"]
    assert backup["available"] is True and [d["label"] for d in backup["drives"]] == ["safe1"]
    assert backup["not_on_any_drive"] == [] and backup["syncs"][0]["copied"] == 6 and backup["syncs"][0]["ok"]
    assert backup["verifications"][-1]["ok"] is True and backup["newest_verified_at"]
    assert cli(cfg, "report", "review", "1", "--by", "Kasi").returncode == 0

    # A changed, a missing and an unexpected file on the drive are each named.
    first = mp / "naskah" / docs[0]["archive_path"]
    first.write_bytes(b"tampered")
    (mp / "naskah" / docs[1]["archive_path"]).unlink()
    (mp / "naskah" / "stray.txt").write_bytes(b"?")
    out = cli(cfg, "verify", "--drive", "safe1", "--json")
    assert out.returncode == 1
    r = json.loads(out.stdout)["drives"]["safe1"]
    assert r["changed"] == [docs[0]["agenda"]] and r["missing"] == [docs[1]["agenda"]] and r["unexpected"] == ["naskah/stray.txt"]
    # Those two are no verified backup any more: the drive lacks them again.
    assert json.loads(cli(cfg, "drive", "list", "--json").stdout)[0]["pending_files"] == 2
    # The failed run is in the audit trail, and the reviewed report is out of date (issue 20).
    verified = [e for e in json.loads(cli(cfg, "log", "--json").stdout) if e["event"] == "drive.verified"]
    assert verified[-1]["details"]["ok"] is False and verified[-1]["details"]["failed"] == 2, verified
    assert json.loads(cli(cfg, "report", "list", "--json").stdout)[0]["outdated"] is True
    (mp / "naskah" / "stray.txt").unlink()
    # in the archive: a stray file is named, naskahd's own root marker (written by init) is not
    assert (cfg.parent / "archive" / ".naskahd-root").is_file()
    (cfg.parent / "archive" / "inbound" / "stray.pdf").write_bytes(b"?")
    out = cli(cfg, "verify", "--archive", "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["archive"]["unexpected"] == ["inbound/stray.pdf"]


def test_restore_rebuilds_an_identical_register_and_archive(tmp_path: Path, drives) -> None:  # type: ignore[no-untyped-def]
    key = tmp_path / "officer.key"
    subprocess.run([require_tool("age-keygen"), "-o", str(key)], check=True, capture_output=True)
    recipient = next(line.split(": ")[1] for line in key.read_text().splitlines() if line.startswith("# public key"))
    files = {f"masuk/in {i}.pdf": os.urandom(3000 + i) for i in range(4)}
    files["keluar/out.pdf"] = b"out"
    files["dikecualikan/RAHASIA nota dinas.pdf"] = b"secret plaintext " * 50
    recipients = [recipient]
    cfg, d = filed_tree(tmp_path, files, recipients=recipients)
    d.stop()
    image = drives.make("ext4")
    image.attach()
    mp = image.mount(tmp_path / "mnt")
    assert cli(cfg, "drive", "register", str(mp), "--name", "safe1").returncode == 0
    assert cli(cfg, "sync").returncode == 0
    # Two more letters, synced within the hour: the snapshot is not rewritten, their
    # register rows reach the drive in the manifest.
    snapshot = mp / "naskah" / ".naskahd" / "register.sqlite3"
    before = snapshot.stat().st_mtime_ns
    d.start()
    (d.drop / "masuk" / "later 1.pdf").write_bytes(b"later one")
    (d.drop / "dikecualikan" / "later secret.pdf").write_bytes(b"later secret " * 9)
    wait_until(lambda: len(d.documents()) == len(files) + 2, 60, "filed", d)
    d.stop()
    out = cli(cfg, "sync")
    assert out.returncode == 0 and "2 file(s) copied" in out.stdout, out.stdout
    assert snapshot.stat().st_mtime_ns == before
    original = json.loads(cli(cfg, "list", "--json").stdout)
    # Exempt letters reach the drive only as their .age files; neither their plaintext nor their name.
    on_drive = b"".join(p.read_bytes() for p in mp.rglob("*") if p.is_file())
    assert b"secret plaintext" not in on_drive and b"RAHASIA" not in on_drive and b"later secret" not in on_drive
    assert not [p for p in mp.rglob("*RAHASIA*")]
    exempt = [x for x in original if x["category"] == "exempt"]
    assert len(exempt) == 2 and (mp / "naskah" / exempt[0]["archive_path"]).name.endswith(".pdf.age")

    new_root = tmp_path / "restored"
    out = cli(cfg, "restore", "--from", str(mp), "--root", str(new_root))
    assert out.returncode == 0, out.stdout + out.stderr
    new_cfg = new_root / "naskahd.toml"
    assert json.loads(cli(new_cfg, "list", "--json").stdout) == original
    out = cli(new_cfg, "verify", "--archive")
    assert out.returncode == 0, out.stdout
    assert tree_hashes(new_root / "archive") == tree_hashes(cfg.parent / "archive")
    from naskahd import installation  # the restored roots carry the restored register's installation

    assert installation.read_marker(new_root / "archive")["installation"] == installation.read_marker(cfg.parent / "archive")["installation"]  # type: ignore[index]
    # the officer's identity opens the restored exempt letter's name as before
    revealed = json.loads(cli(new_cfg, "list", "--json", "--identity", str(key)).stdout)
    assert [x["original_name"] for x in revealed if x["category"] == "exempt"] == ["RAHASIA nota dinas.pdf", "later secret.pdf"]
    # the agenda counters follow the restored rows: the next letter gets a new number
    import sqlite3

    con = sqlite3.connect(new_root / "state" / "register.sqlite3")
    assert con.execute("SELECT last_number FROM agenda_counters WHERE category='exempt'").fetchone() == (2,)
    assert con.execute("SELECT count(*) FROM drives").fetchone() == (0,)  # re-registered on the new host
    # never over an existing installation
    again = cli(cfg, "restore", "--from", str(mp), "--root", str(new_root))
    assert again.returncode == 1 and "not empty" in again.stderr


def test_verify_shows_a_progress_line_on_a_terminal_only_and_a_look_alike_is_refused_by_the_cli(tmp_path: Path, drives) -> None:  # type: ignore[no-untyped-def]
    from conftest_age import run_in_pty

    cfg, d = filed_tree(tmp_path, {f"masuk/p{i}.pdf": os.urandom(5000) for i in range(3)})
    d.stop()
    rc, out = run_in_pty(naskahd_cmd("--config", str(cfg), "verify", "--archive"), [])
    assert rc == 0 and "archive: 3/3 files" in out and "MB/s" in out and "s left" in out, out
    piped = cli(cfg, "verify", "--archive")
    assert piped.returncode == 0 and "MB/s" not in piped.stdout + piped.stderr

    image = drives.make("ext4", label="SAFE")
    image.attach()
    mp = image.mount(tmp_path / "mnt")
    assert cli(cfg, "drive", "register", str(mp), "--name", "safe1").returncode == 0
    uuid = json.loads(cli(cfg, "drive", "list", "--json").stdout)[0]["uuid"]
    image.unplug()
    fake = drives.make("ext4", uuid=uuid, label="SAFE")
    fake.attach()
    fmp = fake.mount(tmp_path / "fake")
    out = cli(cfg, "sync", "--drive", "safe1")
    assert out.returncode == 1 and "refused" in out.stdout and "nothing was written" in out.stdout
    assert sorted(os.listdir(fmp)) == ["lost+found"]
    out = cli(cfg, "verify", "--drive", "safe1", "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["drives"]["safe1"]["refused"]
    assert sorted(os.listdir(fmp)) == ["lost+found"]


def test_a_damaged_register_never_replaces_the_snapshot_on_the_drive(tmp_path: Path, drives) -> None:  # type: ignore[no-untyped-def]
    """The register's damage in pages no sync reads (the cheap check at opening does not see
    it): the backup API would copy it as it is, and the drive's snapshot, the one a restore
    needs, would be a damaged one. The snapshot is checked whole before it goes to the drive."""
    from test_register_damage import _overwrite, _unread_table

    cfg, d = filed_tree(tmp_path, {"masuk/a.pdf": os.urandom(3000), "masuk/b.pdf": os.urandom(3000)})
    d.stop()
    register = d.state / "register.sqlite3"
    _unread_table(register)
    _overwrite(register, 0.9, 0.98)  # the unread table's pages
    image = drives.make("ext4")
    image.attach()
    mp = image.mount(tmp_path / "mnt")
    assert cli(cfg, "drive", "register", str(mp), "--name", "safe1").returncode == 0
    out = cli(cfg, "sync", "--lang", "en")
    assert out.returncode != 0 and "damaged" in out.stdout + out.stderr, (out.stdout, out.stderr)
    assert "Traceback" not in out.stdout + out.stderr
    assert not (mp / "naskah" / ".naskahd" / "register.sqlite3").exists(), "a damaged snapshot reached the drive"
