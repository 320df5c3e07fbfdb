"""Reports: the PDF a head signs (text by pypdf, pages by pdftoppm), CSV, JSON, and the
register of reports with review, validation and out-of-date flags."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from conftest import naskahd_cmd, require_tool, write_config
from naskahd import audit
from naskahd.register import Document, DocumentState, Duplicate, ReviewItem
from naskahd.report import period, registry
from reportdata import SECRET_NAME, fill

MADE = dt.datetime(2026, 12, 1, 2, 30, tzinfo=dt.UTC)  # 09.30 WIB


def office(**kw: object) -> SimpleNamespace:
    return SimpleNamespace(office_name="Dinas Komunikasi dan Informatika Kabupaten Kepulauan Mentawai",
                           office_place="Tuapejat", timezone=ZoneInfo("Asia/Jakarta"), **kw)


@pytest.fixture
def register(tmp_path: Path):
    sessions = fill(f"sqlite:///{tmp_path / 'r.sqlite3'}", 150)
    with sessions.begin() as s:
        first = s.get(Document, 1)
        exempt = s.get(Document, 4)
        assert exempt.category == "exempt"
        s.add(Duplicate(document_id=first.id, source_relpath=b"masuk/copy.pdf", moved_to="copy.pdf",
                        detected_at=dt.datetime(2026, 11, 5, 3, tzinfo=dt.UTC)))
        s.add(Duplicate(document_id=exempt.id, source_relpath=b"", moved_to="",
                        detected_at=dt.datetime(2026, 11, 6, 3, tzinfo=dt.UTC)))
        s.add(ReviewItem(name_sha256="0" * 64, source_relpath=b"", reason="no rule matches its folder or name",
                         moved_at=dt.datetime(2026, 11, 7, 3, tzinfo=dt.UTC)))
    return sessions


def pdf_text(content: bytes) -> list[str]:
    """Each page's text, whitespace (pypdf's line breaks between cells) made single spaces."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(content)).pages]


def agendas(sessions) -> list[str]:
    with sessions() as s:
        return [d.agenda for d in s.query(Document).order_by(Document.id)]


def test_pdf_holds_every_agenda_number_the_totals_and_the_signature_blocks(register) -> None:
    row, content = registry.generate(register, office(), period.month("2026-11"), "pdf", "id", now=MADE)
    pages = pdf_text(content)
    text = "\n".join(pages)
    assert len(pages) >= 4
    for agenda in agendas(register):
        assert agenda in text, agenda
    summary = pages[0]
    assert "RINGKASAN EKSEKUTIF" in summary and "Periode: November 2026" in summary
    assert "Jumlah terdaftar 150" in summary
    assert "Surat masuk" in summary and "Naskah dinas yang dikecualikan (terenkripsi) 15" in summary
    assert "Duplikat yang disisihkan 2" in summary and "Berkas yang dipindahkan untuk ditinjau 1" in summary
    for words in ("Diperiksa oleh,", "Kepala Seksi Persandian", "Disahkan oleh,", "Kepala Bidang Informatika",
                  "Tuapejat, 1 Desember 2026"):
        assert words in summary, words
    assert "Belum ada hardisk backup yang terdaftar" in summary
    for i, page in enumerate(pages, 1):
        assert f"Halaman {i} dari {len(pages)}" in page
        assert "Dinas Komunikasi dan Informatika Kabupaten Kepulauan Mentawai" in page
    # the control list runs over several pages, and its header row comes back on each
    listing = [p for p in pages if re.search(r"\d{4}/[MKD]/2026 \d\d/11/2026", p)]
    assert len(listing) >= 3 and all("No. Nomor agenda Diterima Kategori Nama berkas" in p for p in listing)
    assert "1 November 2026" in text and "30 November 2026" in text
    assert "(dirahasiakan: dikecualikan)" in text
    assert row.sha256 == hashlib.sha256(content).hexdigest()


def test_pdf_pages_are_a4_and_not_blank(register, tmp_path: Path) -> None:
    pdftoppm = require_tool("pdftoppm")
    from PIL import Image

    _row, content = registry.generate(register, office(), period.month("2026-11"), "pdf", "id", now=MADE)
    (tmp_path / "r.pdf").write_bytes(content)
    subprocess.run([pdftoppm, "-r", "36", "-png", str(tmp_path / "r.pdf"), str(tmp_path / "page")], check=True)
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == len(PdfReader(io.BytesIO(content)).pages)
    for png in pngs:
        with Image.open(png) as im:
            w, h = im.size
            # A4 is 210 x 297 mm: 297.6 x 421 px at 36 dpi
            assert abs(w - 210 / 25.4 * 36) <= 1.5 and abs(h - 297 / 25.4 * 36) <= 1.5, (png, im.size)
            grey = im.convert("L")
            dark = sum(grey.histogram()[:160])
            assert dark > 0.005 * w * h, f"{png.name} is (nearly) blank: {dark} dark pixels"
    for page in PdfReader(io.BytesIO(content)).pages:
        box = page.mediabox
        assert (round(float(box.width)), round(float(box.height))) == (595, 842)


def test_csv_opens_with_the_bom_and_semicolons(register) -> None:
    _row, content = registry.generate(register, office(), period.month("2026-11"), "csv", "id", now=MADE)
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["nomor_agenda", "tanggal_diterima", "waktu_diterima", "kategori"]
    assert [r[0] for r in body] == sorted((r[0] for r in body), key=[r[0] for r in body].index)
    assert {r[0] for r in body} == set(agendas(register))
    for r in body:
        dt.date.fromisoformat(r[1])  # ISO dates
        assert r[5].isdigit() and len(r[6]) == 64
    exempt = [r for r in body if "/D/" in r[0]]
    assert exempt and all(r[4] == "(dirahasiakan: dikecualikan)" for r in exempt)
    sniffed = csv.Sniffer().sniff(content.decode("utf-8-sig")[:2000])
    assert sniffed.delimiter == ";"


def test_json_is_for_machines(register) -> None:
    row, content = registry.generate(register, office(), period.month("2026-11"), "json", "en", now=MADE)
    doc = json.loads(content)
    assert doc["report"]["id"] == row.id and doc["report"]["period"] == "2026-11"
    assert doc["data"]["totals"]["total"] == 150
    assert {d["agenda"] for d in doc["data"]["documents"]} == set(agendas(register))
    assert all(d["name"] is None for d in doc["data"]["documents"] if d["category"] == "exempt")


@pytest.mark.parametrize("fmt", ["pdf", "csv", "json"])
def test_an_exempt_letters_name_is_in_no_report(register, fmt: str) -> None:
    with register.begin() as s:  # even if a name had slipped into the row, the report withholds it
        d = s.get(Document, 4)
        d.original_name = SECRET_NAME
    _row, content = registry.generate(register, office(), period.month("2026-11"), fmt, "id", now=MADE)
    text = "\n".join(pdf_text(content)) if fmt == "pdf" else content.decode("utf-8")
    assert "RAHASIA" not in text and "Pengamanan" not in text


def test_rendered_again_identically_and_signed_off(register) -> None:
    cfg = office()
    row, content = registry.generate(register, cfg, period.month("2026-11"), "pdf", "id", now=MADE)
    with register() as s:
        assert registry.render(registry.get(s, row.id)) == content
    with pytest.raises(registry.ReportError, match="belum diperiksa|not been reviewed"):
        registry.validate(register, cfg, row.id, "Ir. Kabid")
    registry.review(register, cfg, row.id, "Budi Santoso, S.Kom", "Sudah sesuai", now=MADE + dt.timedelta(hours=1))
    with pytest.raises(registry.ReportError):
        registry.review(register, cfg, row.id, "Someone else")
    validated = registry.validate(register, cfg, row.id, "Ir. Yohanes Sakerebau", now=MADE + dt.timedelta(hours=2))
    with register() as s:
        again = registry.render(registry.get(s, row.id))
        assert registry.render(registry.get(s, row.id)) == again  # deterministic with sign-offs too
        assert audit.verify_chain(s, [audit.parse_head(validated.anchor)]).ok
        events = [e.event for e in audit.events(s)]
    assert events == ["report.generated", "report.reviewed", "report.validated"]
    summary = pdf_text(again)[0]
    for words in ("Budi Santoso, S.Kom", "Sudah sesuai", "Ir. Yohanes Sakerebau", "1 Desember 2026 10.30 WIB",
                  validated.anchor.split(":")[0] + ":"):
        assert words in summary, words
    assert validated.anchor in summary.replace(" ", "")


def test_a_late_document_makes_a_reviewed_report_out_of_date(register) -> None:
    cfg = office()
    row, _content = registry.generate(register, cfg, period.month("2026-11"), "pdf", "id", now=MADE)
    other, _ = registry.generate(register, cfg, period.month("2026-10"), "csv", "id", now=MADE)
    registry.review(register, cfg, row.id, "Kasi")
    registry.review(register, cfg, other.id, "Kasi")
    assert registry.outdated_reviewed(register, cfg) == []
    assert [r["outdated"] for r in registry.listing(register, cfg)] == [False, False]
    with register.begin() as s:  # a letter of 30 November registered late (23.30 WIB)
        s.add(Document(agenda="0999/M/2026", category="inbound", year=2026, number=999, original_name="late.pdf",
                       source_relpath=b"masuk/late.pdf", archive_path="inbound/2026/11/late.pdf", size=10,
                       sha256="f" * 64, received_at=dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC),
                       state=DocumentState.FILED))
    assert [r["outdated"] for r in registry.listing(register, cfg)] == [True, False]
    assert registry.outdated_reviewed(register, cfg) == [row.id]
    with pytest.raises(registry.ReportError, match="kedaluwarsa|out of date"):
        registry.validate(register, cfg, row.id, "Kabid")
    with register() as s:
        stored = registry.get(s, row.id)
        again = registry.render(stored, registry.is_outdated(s, cfg, stored))
    first = pdf_text(again)[0]
    assert "KEDALUWARSA" in first
    assert "0999/M/2026" not in "".join(pdf_text(again))  # it shows the data it was made from


def test_periods_are_checked() -> None:
    from naskahd.errors import UsageError

    assert period.month("2026-02").end == dt.date(2026, 2, 28)
    assert period.between("2026-11-01", "2026-11-15").label == "2026-11-01..2026-11-15"
    for bad in (lambda: period.month("2026-13"), lambda: period.month("Nov"),
                lambda: period.between("2026-11-15", "2026-11-01"), lambda: period.between("2026-01-01", "2027-06-01")):
        with pytest.raises(UsageError):
            bad()


def test_english_report(register) -> None:
    _row, content = registry.generate(register, office(), period.month("2026-11"), "pdf", "en", now=MADE)
    first = pdf_text(content)[0]
    assert "EXECUTIVE SUMMARY" in first and "Tuapejat, 1 December 2026" in first and "Page 1 of" in first


# -- the command line ---------------------------------------------------------------------------
def run(config: Path, *args: str, lang: str = "id") -> subprocess.CompletedProcess[str]:
    return subprocess.run(naskahd_cmd("--lang", lang, "--config", str(config), *args), capture_output=True, text=True, timeout=120)


def test_report_commands(tmp_path: Path) -> None:
    config = write_config(tmp_path / "root")
    fill(f"sqlite:///{tmp_path / 'root' / 'state' / 'register.sqlite3'}", 40)
    out = tmp_path / "nov.pdf"
    made = run(config, "report", "--month", "2026-11", "-o", str(out))
    assert made.returncode == 0, made.stderr
    assert "Laporan 1 (2026-11, pdf) ditulis ke" in made.stdout
    assert hashlib.sha256(out.read_bytes()).hexdigest() in made.stdout
    again = run(config, "report", "--month", "2026-11", "-o", str(out))
    assert again.returncode == 1 and "sudah ada" in again.stderr  # never overwritten
    csv_run = run(config, "report", "--from", "2026-11-01", "--to", "2026-11-10", "--format", "csv", "-o", str(tmp_path / "a.csv"))
    assert csv_run.returncode == 0, csv_run.stderr
    listed = json.loads(run(config, "report", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [1, 2] and listed[1]["period"] == "2026-11-01..2026-11-10"
    assert set(listed[0]) == {"id", "period", "kind", "format", "sha256", "created_at", "reviewed_by", "reviewed_at",
                              "validated_by", "validated_at", "outdated"}
    early = run(config, "report", "validate", "1", "--by", "Kabid")
    assert early.returncode == 1 and "belum diperiksa" in early.stderr
    assert run(config, "report", "review", "1", "--by", "Budi", "--note", "baik").returncode == 0
    valid = run(config, "report", "validate", "1", "--by", "Yohanes")
    assert valid.returncode == 0 and "Kepala jejak audit:" in valid.stdout
    listed = json.loads(run(config, "report", "list", "--json").stdout)
    assert listed[0]["reviewed_by"] == "Budi" and listed[0]["validated_by"] == "Yohanes" and not listed[0]["outdated"]
    shown = run(config, "report", "show", "2", "-o", str(tmp_path / "again.csv"))
    assert shown.returncode == 0 and "sama persis" in shown.stdout
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    missing = run(config, "report", "review", "9", "--by", "X")
    assert missing.returncode == 1 and "tidak ada laporan 9" in missing.stderr
    bad = run(config, "report", "--month", "2026-13")
    assert bad.returncode == 2 and "bukan bulan" in bad.stderr
    none = run(config, "report")
    assert none.returncode == 2
    logged = json.loads(run(config, "log", "--json").stdout)
    assert [e["event"] for e in logged] == ["report.generated", "report.generated", "report.reviewed", "report.validated"]
    assert logged[2]["actor"] == "Budi"
    assert run(config, "verify", "--audit").returncode == 0


def test_status_names_an_out_of_date_reviewed_report(tmp_path: Path) -> None:
    config = write_config(tmp_path / "root")
    url = f"sqlite:///{tmp_path / 'root' / 'state' / 'register.sqlite3'}"
    sessions = fill(url, 20, year=2026, month=11)
    cfg = office()
    row, _ = registry.generate(sessions, cfg, period.month("2026-11"), "json", "id")
    registry.review(sessions, cfg, row.id, "Kasi")
    status = json.loads(run(config, "status", "--json").stdout)
    assert status["reports_outdated"] == []
    with sessions.begin() as s:
        s.delete(s.get(Document, 2))  # a document of the period gone from the register
    status = json.loads(run(config, "status", "--json").stdout)
    assert status["reports_outdated"] == [row.id]
    assert any("kedaluwarsa" in p for p in status["problems"]), status["problems"]


def test_drive_figures_plug_in_and_a_lost_copy_makes_the_report_out_of_date(register, monkeypatch) -> None:
    """The drives issue provides naskahd.drives.reporting.backup_facts; here a stand-in."""
    from naskahd.report import data

    held = {"ids": None}

    def facts(session, lo, hi, ids):
        copies = {i: [{"drive": "BACKUP-1", "verified_at": "2026-11-28T02:00:00+00:00"}] for i in (held["ids"] or ids)}
        return {"available": True,
                "drives": [{"label": "BACKUP-1", "registered_at": "2026-10-01T01:00:00+00:00",
                            "last_seen_at": "2026-11-28T02:10:00+00:00"}],
                "syncs": [{"drive": "BACKUP-1", "at": "2026-11-28T02:00:00+00:00", "copied": 140, "verified": 140, "ok": True}],
                "verifications": [{"drive": "BACKUP-1", "at": "2026-11-29T02:00:00+00:00", "checked": 150, "failed": 1, "ok": False}],
                "copies": copies}

    monkeypatch.setattr(data, "backup_provider", lambda: facts)
    cfg = office()
    row, content = registry.generate(register, cfg, period.month("2026-11"), "pdf", "id", now=MADE)
    pages = pdf_text(content)
    assert "terbaru pada 29 November" not in pages[0]  # the run of the 29th failed: not a verified backup
    assert "backup terverifikasi terbaru pada 28 November 2026 09.00 WIB (3 hari sebelum laporan ini)" in pages[0]
    assert "1 proses backup atau verifikasi gagal" in pages[0]
    backup = pages[-1]
    assert "BACKUP-1" in backup and "GAGAL" in backup and "BAIK" in backup
    import re

    assert re.search(r"BACKUP-1 28/1", " ".join(pages[1:-1])), [p[p.index("BACKUP"):][:200] for p in pages if "BACKUP" in p][:1]  # the control list names the drive holding each copy, and since when
    assert "Tidak ada: setiap naskah dalam periode ini memiliki salinan terverifikasi." in backup
    _row, csv_content = registry.generate(register, cfg, period.month("2026-11"), "csv", "id", now=MADE)
    body = list(csv.reader(io.StringIO(csv_content.decode("utf-8-sig")), delimiter=";"))[1:]
    assert all(r[7] == "BACKUP-1 2026-11-28" for r in body)
    registry.review(register, cfg, row.id, "Kasi")
    assert registry.outdated_reviewed(register, cfg) == []
    with register() as s:
        held["ids"] = [d.id for d in s.query(Document).order_by(Document.id)][1:]  # the drive lost document 1's copy
    assert registry.outdated_reviewed(register, cfg) == [row.id]
