"""Exempt letters end to end: dropped into dikecualikan/, stored only as age files that the
officer's key (and the real `age` CLI) decrypts to the exact bytes; no plaintext, and no
original name, anywhere under the archive or state folders."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Daemon, all_files, naskahd_cmd, require_tool, write_config

pytestmark = pytest.mark.system


@pytest.fixture
def officer(tmp_path: Path) -> tuple[Path, str]:
    """The officer's key pair, made by the real age-keygen; only the recipient reaches the host."""
    keygen = require_tool("age-keygen")
    key = tmp_path / "officer.key"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    recipient = next(line.split(": ")[1] for line in key.read_text().splitlines() if line.startswith("# public key"))
    return key, recipient


def real_pdf(title: str) -> bytes:
    """A complete PDF (the content check takes nothing less) carrying ``title`` in clear."""
    import io

    from pypdf import PdfWriter

    w = PdfWriter()
    for _ in range(3):
        w.add_blank_page(width=595, height=842)
    w.add_metadata({"/Title": title, "/Subject": os.urandom(100_000).hex()})
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def all_bytes_under(*folders: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for f in folders for p in all_files(f) if p.is_file()]


def test_exempt_scan_is_stored_only_as_an_age_file_the_officer_can_open(daemon_factory, officer, tmp_path: Path) -> None:
    key, recipient = officer
    age_cli = require_tool("age")
    d: Daemon = daemon_factory(recipients=[recipient])
    secret = "RAHASIA rencana pengamanan " + os.urandom(16).hex()
    plaintext = real_pdf(secret)
    name = "Rencana Pengamanan Pilkada.pdf"
    (d.drop / "dikecualikan" / name).write_bytes(plaintext)
    ev = d.wait_event("document.registered")
    assert "path" not in ev  # the exempt name is withheld from the log too
    assert "sha256" not in ev and "size" not in ev  # nor anything that confirms its content
    d.wait_event("document.encrypted")
    (doc,) = d.documents()
    assert doc["category"] == "exempt" and doc["original_name"] is None
    assert doc["agenda"].startswith("0001/D/")
    assert doc["archive_path"].endswith(doc["agenda"].replace("/", "-") + ".pdf.age")
    # The register keeps only a tag keyed by the host secret, never the plain SHA-256: a
    # holder of a candidate document cannot confirm it was filed (filing/keys.py).
    from naskahd.filing.keys import ExemptKeys

    assert doc["sha256"] != hashlib.sha256(plaintext).hexdigest()
    assert doc["sha256"] == ExemptKeys.of(d.state).content(hashlib.sha256(plaintext).hexdigest())
    stored = d.archive / doc["archive_path"]
    assert doc["ciphertext_sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert stored.read_bytes().startswith(b"age-encryption.org/v1\n-> X25519 ")
    out = subprocess.run([age_cli, "-d", "-i", str(key)], input=stored.read_bytes(), capture_output=True, check=True)
    assert out.stdout == plaintext
    assert not (d.drop / "dikecualikan" / name).exists()
    d.stop()
    # Neither the letter nor its name is anywhere under the archive or the state folder
    # (the register, its WAL, the heartbeat), in any form naskahd could have written.
    needle = secret.encode()
    assert needle in plaintext
    plain_digest = hashlib.sha256(plaintext).hexdigest().encode()
    for path, data in all_bytes_under(d.archive, d.state):
        assert needle not in data, path
        assert plain_digest not in data, path
        assert name.encode() not in data and b"Rencana Pengamanan" not in data, path
    listed = json.loads(d.cli("list", "--json").stdout)
    assert listed[0]["original_name"] is None
    revealed = json.loads(d.cli("list", "--json", "--identity", str(key)).stdout)
    assert revealed[0]["original_name"] == name
    text = d.cli("list").stdout
    assert "withheld" in text and name not in text


def test_the_recipients_are_recorded(daemon_factory, officer, tmp_path: Path) -> None:
    _key, recipient = officer
    second = subprocess.run([require_tool("age-keygen")], capture_output=True, text=True, check=True).stdout
    second_recipient = next(line.split(": ")[1] for line in second.splitlines() if line.startswith("# public key"))
    d = daemon_factory(recipients=[recipient, second_recipient])
    (d.drop / "dikecualikan" / "x.pdf").write_bytes(b"classified")
    d.wait_event("document.registered")
    d.stop()
    import sqlite3

    con = sqlite3.connect(d.state / "register.sqlite3")
    (recipients,) = con.execute("select recipients from documents").fetchone()
    assert json.loads(recipients) == [recipient, second_recipient]


def test_a_malformed_recipient_is_refused_at_start_with_the_key_named(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "n", recipients=["age1notavalidkey"])
    out = subprocess.run(naskahd_cmd("--config", str(cfg), "run"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 78
    assert "encryption.recipients[0]" in out.stderr and "age1notavalidkey" in out.stderr


def test_a_private_key_in_the_recipients_is_refused(tmp_path: Path) -> None:
    secret = subprocess.run([require_tool("age-keygen")], capture_output=True, text=True, check=True).stdout
    identity = next(line for line in secret.splitlines() if line.startswith("AGE-SECRET-KEY-1"))
    cfg = write_config(tmp_path / "n", recipients=[identity])
    out = subprocess.run(naskahd_cmd("--config", str(cfg), "run"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 78 and "encryption.recipients[0]" in out.stderr
    assert identity not in out.stderr  # a secret is never echoed back


def test_init_writes_recipients(tmp_path: Path, officer) -> None:
    _key, recipient = officer
    root = tmp_path / "office"
    out = subprocess.run(naskahd_cmd("init", "--root", str(root), "--recipient", recipient), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    from naskahd import config

    assert config.load(str(root / "naskahd.toml")).recipients == (recipient,)
    bad = subprocess.run(naskahd_cmd("init", "--root", str(tmp_path / "other"), "--recipient", "age1bogus"), capture_output=True, text=True, timeout=60)
    # A bad --recipient is a bad argument (exit 2, issue 18), refused before anything is created.
    assert bad.returncode == 2 and not (tmp_path / "other").exists()


def test_exempt_duplicate_stays_inside_the_drop_folder(daemon_factory, officer) -> None:
    _key, recipient = officer
    d = daemon_factory(recipients=[recipient])
    (d.drop / "dikecualikan" / "a.pdf").write_bytes(b"classified letter")
    d.wait_event("document.registered")
    (d.drop / "dikecualikan" / "a-again.pdf").write_bytes(b"classified letter")
    d.wait_event("document.duplicate")
    assert (d.drop / "duplikat" / "a-again.pdf").read_bytes() == b"classified letter"
    assert len(all_files(d.archive)) == 1


def test_item8_an_exempt_item_in_review_keeps_its_name_withheld_and_only_goes_back_to_exempt(daemon_factory, officer) -> None:
    _key, recipient = officer
    d: Daemon = daemon_factory(recipients=[recipient], incomplete_after=0.5)
    name = "Rahasia Operasi Nama Terlarang.pdf"
    (d.drop / "dikecualikan" / name).write_bytes(b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n")  # cut: never complete
    d.wait_event("document.review")
    held = d.drop / "tinjau" / "dikecualikan" / name
    assert held.exists(), "kept apart from ordinary review items"
    assert not (d.drop / "tinjau" / name).exists()
    for args in (("status",), ("status", "--json")):
        out = d.cli(*args)
        assert name not in out.stdout + out.stderr and "Terlarang" not in out.stdout
        assert "dikecualikan" in out.stdout
    info = d.status()
    assert info["review"] == 1
    (problem,) = [p for p in info["problems"] if "review" in p]
    assert "dikecualikan/" in problem and "masuk" not in problem and "keluar" not in problem
    assert "incomplete" in problem  # its reason is shown
    assert name not in d.log_text() and "Terlarang" not in d.log_text()
    d.stop()
    for path, data in all_bytes_under(d.state, d.archive):
        assert name.encode() not in data, path
