"""The backup control list gains the letters' details (issue 21): CSV columns and a PDF
section; an exempt letter's are blank but its date and sifat; recording details makes the
reports of their period out of date, and a register without details keeps its reports'
fingerprints."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from naskahd import config
from naskahd.letters.details import annotate
from naskahd.report import data, period, registry

from reportdata import fill

MADE = dt.datetime(2026, 12, 1, 2, 30, tzinfo=dt.UTC)
MARKER = "MARKER-LAPORAN-51"


def office() -> SimpleNamespace:
    return SimpleNamespace(office_name="Dinas Kominfo", office_place="Tuapejat", timezone=ZoneInfo("Asia/Jakarta"),
                           sifat=config.SIFAT)


@pytest.fixture
def register(tmp_path: Path):
    return fill(f"sqlite:///{tmp_path / 'r.sqlite3'}", 40)


def fill_details(sessions) -> None:
    cfg = office()
    annotate(sessions, cfg, "0001/M/2026", {"nomor": "045/UND/XI/2026", "tanggal": "2026-10-30", "asal": "Bupati Mentawai",
                                            "perihal": "<b>Rapat</b> & koordinasi", "sifat": "segera",
                                            "catatan": "baris 1\nbaris 2"}, by="op")
    annotate(sessions, cfg, "0001/K/2026", {"tujuan": "Gubernur", "perihal": "Balasan"}, by="op")
    annotate(sessions, cfg, "0001/D/2026", {"sifat": "sangat segera", "tanggal": "2026-10-29"}, by="op")


def csv_rows(sessions) -> list[list[str]]:
    _row, content = registry.generate(sessions, office(), period.month("2026-11"), "csv", "id", now=MADE)
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


def test_the_csv_control_list_has_the_letter_columns_last(register) -> None:
    fill_details(register)
    header, *body = csv_rows(register)
    assert header[:4] == ["nomor_agenda", "tanggal_diterima", "waktu_diterima", "kategori"] and len(header) == 15
    assert header[8:] == ["nomor_surat", "tanggal_surat", "asal", "tujuan", "perihal", "sifat", "catatan"]
    by_agenda = {r[0]: r for r in body}
    assert by_agenda["0001/M/2026"][8:] == ["045/UND/XI/2026", "2026-10-30", "Bupati Mentawai", "",
                                            "<b>Rapat</b> & koordinasi", "segera", "baris 1\nbaris 2"]
    assert by_agenda["0001/K/2026"][8:] == ["", "", "", "Gubernur", "Balasan", "", ""]
    assert by_agenda["0001/D/2026"][8:] == ["", "2026-10-29", "", "", "", "sangat segera", ""]
    assert by_agenda["0002/M/2026"][8:] == [""] * 7
    assert all(len(r) == 15 for r in body)


def test_the_pdf_has_a_letter_details_section_only_when_there_are_details(register) -> None:
    _row, before = registry.generate(register, office(), period.month("2026-11"), "pdf", "id", now=MADE)
    assert "1a." not in " ".join(p.extract_text() for p in PdfReader(io.BytesIO(before)).pages)
    fill_details(register)
    _row, after = registry.generate(register, office(), period.month("2026-11"), "pdf", "id", now=MADE)
    pages = [" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(after)).pages]
    (section,) = [p for p in pages if "1a. Data surat" in p]
    assert "045/UND/XI/2026" in section and "30/10/2026" in section and "Bupati Mentawai" in section
    assert "<b>Rapat</b> &" in section and "Gubernur" in section  # shown as typed, cut to its column
    exempt = section[section.index("0001/D/2026"):]
    assert exempt.split()[:3] == ["0001/D/2026", "29/10/2026", "sangat"]


def test_details_make_the_reports_of_their_period_out_of_date_and_no_others(register) -> None:
    cfg = office()
    november, _content = registry.generate(register, cfg, period.month("2026-11"), "csv", "id", now=MADE)
    december, _content = registry.generate(register, cfg, period.month("2026-12"), "csv", "id", now=MADE)
    with register() as s:
        assert not registry.is_outdated(s, cfg, november) and not registry.is_outdated(s, cfg, december)
        snapshot = data.collect(s, cfg.office_name, cfg.timezone, period.month("2026-11"))
    # No details recorded: the snapshot is what it was before details existed (a report made
    # then is not out of date after the upgrade).
    assert all("letter" not in d for d in snapshot["documents"])
    annotate(register, cfg, "0001/D/2026", {"sifat": "segera"}, by="op")
    with register() as s:
        assert registry.is_outdated(s, cfg, november) and not registry.is_outdated(s, cfg, december)
    with pytest.raises(registry.ReportError, match="out of date"):
        registry.review(register, cfg, november.id, "Kasi")


def test_no_exempt_name_or_subject_reaches_a_report(register) -> None:
    from sqlalchemy import select

    from naskahd.register import Document, LetterDetails

    fill_details(register)
    with register.begin() as s:  # a subject stored by mistake in an exempt letter's row
        doc = s.scalars(select(Document).where(Document.agenda == "0001/D/2026")).one()
        row = s.get(LetterDetails, doc.id)
        row.perihal = row.nomor = row.asal = row.catatan = MARKER
    for fmt in ("csv", "json", "pdf"):
        _row, content = registry.generate(register, office(), period.month("2026-11"), fmt, "en", now=MADE)
        text = content.decode("utf-8", "replace") if fmt != "pdf" else " ".join(
            p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)
        assert MARKER not in text, fmt
