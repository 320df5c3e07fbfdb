"""The real daemon writes the audit trail in its register transactions, and an exempt
letter's name reaches neither the audit table nor any report made from the register."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import Daemon, naskahd_cmd, require_tool

pytestmark = pytest.mark.system

SECRET = "RAHASIA Operasi Sandi Mentawai"


@pytest.fixture
def recipient(tmp_path: Path) -> str:
    keygen = require_tool("age-keygen")
    key = tmp_path / "officer.key"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    return next(line.split(": ")[1] for line in key.read_text().splitlines() if line.startswith("# public key"))


def pdf(title: str) -> bytes:
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(width=595, height=842)
    w.add_metadata({"/Title": title, "/Subject": os.urandom(32).hex()})
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_the_daemons_events_are_chained_and_exempt_names_stay_out(daemon_factory, recipient: str, tmp_path: Path) -> None:
    d: Daemon = daemon_factory(recipients=[recipient])
    letter, classified = pdf("undangan"), pdf("rahasia")
    (d.drop / "masuk" / "Surat Undangan Rapat.pdf").write_bytes(letter)
    (d.drop / "dikecualikan" / f"{SECRET}.pdf").write_bytes(classified)
    d.wait_event("document.registered", count=2)
    (d.drop / "masuk" / "Surat Undangan Rapat (salinan).pdf").write_bytes(letter)
    (d.drop / "dikecualikan" / f"{SECRET} lagi.pdf").write_bytes(classified)
    d.wait_event("document.duplicate", count=2)
    os.symlink("/etc/hostname", d.drop / "dikecualikan" / f"{SECRET} tautan.pdf")
    d.wait_event("document.review")
    assert d.stop() == 0

    events = json.loads(d.cli("log", "--json", check=True).stdout)
    names = [e["event"] for e in events]
    assert names[0] == "daemon.started" and names[-1] == "daemon.stopped"
    assert sorted(n for n in names if n.startswith("document.")) == [
        "document.duplicate", "document.duplicate", "document.encrypted", "document.filed", "document.filed", "document.review"]
    filed = {e["details"]["category"]: e["details"] for e in events if e["event"] == "document.filed"}
    assert filed["inbound"]["agenda"].endswith("/M/" + filed["inbound"]["agenda"][-4:])
    assert "sha256" not in filed["exempt"]  # the plaintext's hash of an exempt letter stays out too
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert d.cli("verify", "--audit").returncode == 0

    with sqlite3.connect(d.state / "register.sqlite3") as c:
        dump = "\n".join(c.iterdump())
        audit_rows = "\n".join(repr(r) for r in c.execute("SELECT * FROM audit_events"))
    assert "Surat Undangan" not in audit_rows  # no names at all in the audit table
    assert "RAHASIA" not in audit_rows and "Operasi" not in audit_rows
    assert "RAHASIA" not in dump  # nor anywhere in the register

    month = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).strftime("%Y-%m")
    for fmt in ("pdf", "csv", "json"):
        out = tmp_path / f"report.{fmt}"
        made = d.cli("report", "--month", month, "--format", fmt, "-o", str(out))
        assert made.returncode == 0, made.stderr
        if fmt == "pdf":
            from pypdf import PdfReader

            text = "\n".join(p.extract_text() for p in PdfReader(str(out)).pages)
        else:
            text = out.read_bytes().decode("utf-8-sig")
        assert filed["exempt"]["agenda"] in text and filed["inbound"]["agenda"] in text
        assert "Surat Undangan Rapat.pdf" in text or fmt == "pdf"  # ordinary names are shown
        assert "RAHASIA" not in text and "Operasi" not in text, fmt
    assert d.cli("verify", "--audit").returncode == 0
    assert subprocess.run(naskahd_cmd("--config", str(d.config), "log"), capture_output=True, text=True).returncode == 0


def test_sigkill_during_a_burst_leaves_one_filed_event_per_document(daemon_factory) -> None:
    """The audit row commits with the register row or not at all: after SIGKILLs in bursts
    and restarts, each agenda number has exactly one ``document.filed``, and the chain holds."""
    import time

    from conftest import all_files, wait_until

    d: Daemon = daemon_factory(settle=0.2)
    total = 0
    for round_ in range(3):
        for i in range(120):
            (d.drop / "masuk" / f"r{round_}-{i}.pdf").write_bytes(os.urandom(1500))
        total += 120
        wait_until(lambda: d.find("document.registered"), 20, "some filing", d)
        time.sleep(0.05 * round_)
        d.kill()
        d.start()
    wait_until(lambda: all_files(d.drop) == [], 60, "drop folder empty", d)
    assert d.stop() == 0
    agendas = sorted(doc["agenda"] for doc in d.documents())
    events = json.loads(d.cli("log", "--json", check=True).stdout)
    filed = sorted(e["details"]["agenda"] for e in events if e["event"] == "document.filed")
    assert len(agendas) == total and filed == agendas
    assert sum(e["event"] == "daemon.started" for e in events) == 4
    assert sum(e["event"] == "daemon.stopped" for e in events) == 1  # SIGKILL leaves no stop event
    verified = d.cli("verify", "--audit", "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["audit"]["rows"] == len(events)
