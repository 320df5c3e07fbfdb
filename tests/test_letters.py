"""A letter's details, the register's search and a document's page (issue 21): validation as
pure functions; annotate, search and view on a real SQLite register migrated by Alembic."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from naskahd import audit, config
from naskahd.errors import EXIT_USAGE, ExemptDetailRefused, LetterError, UnknownDocument
from naskahd.letters import details, index, search, view
from naskahd.letters.details import Details, annotate, clean_text, normalize_agenda, parse_changes, parse_date
from naskahd.letters.search import Query
from naskahd.register import AuditEvent, Copy, Document, Drive, LetterDetails

from reportdata import fill

TODAY = dt.date(2026, 12, 1)
MARKER = "MARKER-7f3a"  # planted in an exempt letter's name: it must appear in no output


def parse(changes: dict[str, Any], category: str = "inbound") -> dict[str, Any]:
    return parse_changes(changes, agenda="0001/M/2026", category=category, sifat=config.SIFAT, today=TODAY)


# -- validation (pure) ---------------------------------------------------------------------
def test_text_is_cleaned_of_control_and_invisible_characters() -> None:
    assert clean_text("  Undangan\x00 rapat\t\x1b[31m  koordinasi\u202e ") == "Undangan rapat [31m koordinasi"
    assert clean_text("baris satu\r\n  baris\x07 dua  \n", multiline=True) == "baris satu\nbaris dua"
    assert clean_text("Cafe\u0301") == "Caf\u00e9"  # NFC


@pytest.mark.parametrize("text, day", [("2026-11-30", dt.date(2026, 11, 30)), ("30-11-2026", dt.date(2026, 11, 30)),
                                       ("30/11/2026", dt.date(2026, 11, 30)), ("1.2.2025", dt.date(2025, 2, 1))])
def test_letter_dates_are_read_in_the_forms_people_write(text: str, day: dt.date) -> None:
    assert parse_date(text, today=TODAY) == day


@pytest.mark.parametrize("text", ["31-02-2026", "2026-13-01", "kemarin", "2026/11", "2026-12-02", "1899-12-31"])
def test_impossible_or_implausible_dates_are_refused(text: str) -> None:
    with pytest.raises(LetterError) as err:
        parse_date(text, today=TODAY)
    assert err.value.field == "tanggal" and err.value.exit_code == EXIT_USAGE


def test_changes_are_cleaned_and_an_empty_value_clears_a_field() -> None:
    out = parse({"nomor": " 045/UND/XI/2026 ", "sifat": "Sangat  SEGERA", "tanggal": "30-11-2026", "perihal": "",
                 "catatan": None})
    assert out == {"nomor": "045/UND/XI/2026", "sifat": "sangat segera", "tanggal": dt.date(2026, 11, 30),
                   "perihal": None, "catatan": None}


def test_sifat_must_be_one_of_the_configured_choices() -> None:
    with pytest.raises(LetterError, match="rahasia") as err:
        parse({"sifat": "rahasia"})
    assert err.value.field == "sifat" and "biasa, segera, sangat segera" in str(err.value)
    custom = parse_changes({"sifat": "KILAT"}, agenda="x", category="inbound", sifat=("biasa", "kilat"), today=TODAY)
    assert custom == {"sifat": "kilat"}


def test_lengths_unknown_fields_and_the_wrong_side_of_the_letter_are_refused() -> None:
    with pytest.raises(LetterError) as err:
        parse({"perihal": "x" * 501})
    assert err.value.field == "perihal" and "501" in str(err.value)
    parse({"perihal": "x" * 500})
    with pytest.raises(LetterError) as err:
        parse({"subject": "x"})
    assert err.value.field == "subject"
    with pytest.raises(LetterError) as err:
        parse({"tujuan": "Bupati"}, "inbound")
    assert err.value.field == "tujuan"
    with pytest.raises(LetterError) as err:
        parse({"asal": "Bupati"}, "outbound")
    assert err.value.field == "asal"
    assert parse({"tujuan": "Bupati"}, "outbound") == {"tujuan": "Bupati"}


@pytest.mark.parametrize("name", ["nomor", "asal", "tujuan", "perihal", "catatan"])
def test_an_exempt_letter_keeps_only_dates_and_sifat_in_clear(name: str) -> None:
    with pytest.raises(ExemptDetailRefused) as err:
        parse({name: "rahasia negara", "sifat": "segera"}, "exempt")
    assert err.value.exit_code == EXIT_USAGE and err.value.field == name and "rahasia negara" not in str(err.value)
    assert parse({"sifat": "segera", "tanggal": "2026-11-30", name: ""}, "exempt") == {
        "sifat": "segera", "tanggal": dt.date(2026, 11, 30), name: None}


def test_agenda_numbers_are_read_as_people_write_them() -> None:
    assert normalize_agenda("1/m/2026") == "0001/M/2026"
    assert normalize_agenda(" 0007-D-2026 ") == "0007/D/2026"
    for bad in ("0001/X/2026", "surat", "0001/M/26", ""):
        with pytest.raises(LetterError):
            normalize_agenda(bad)


def test_the_sifat_choices_come_from_the_configuration(tmp_path: Path) -> None:
    assert config.parse({}, source="x", base=tmp_path).sifat == ("biasa", "segera", "sangat segera")
    cfg = config.parse({"letters": {"sifat": ["biasa", " kilat  segera "]}}, source="x", base=tmp_path)
    assert cfg.sifat == ("biasa", "kilat segera")
    for bad in ([], ["biasa", "Biasa"], [""], ["x" * 33]):
        with pytest.raises(config.ConfigError, match="letters.sifat"):
            config.parse({"letters": {"sifat": bad}}, source="x", base=tmp_path)
    with pytest.raises(config.ConfigError, match="letters.urgency"):
        config.parse({"letters": {"urgency": []}}, source="x", base=tmp_path)


# -- on a real register --------------------------------------------------------------------
@pytest.fixture(params=["indexed", "not yet indexed"])
def reg(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """60 documents; found through the search index (as filing keeps it), or not yet
    indexed (inserted by a path that does not index: found the same way all the same)."""
    url = f"sqlite:///{tmp_path / 'state' / 'register.sqlite3'}"
    (tmp_path / "state").mkdir()
    sessions = fill(url, 60)
    if request.param == "indexed":
        with sessions.begin() as s:
            assert index.catch_up(s, limit=25) == 25 and index.catch_up(s, limit=None) == 35
    with sessions.begin() as s:  # an exempt letter whose (sealed) name would carry the marker
        for d in s.scalars(select(Document).where(Document.category == "exempt")):
            d.original_name_sealed = f"sealed {MARKER}".encode()
    cfg = config.parse({"paths": {"drop": "drop", "archive": "archive", "state": "state"}}, source="t", base=tmp_path)
    return sessions, cfg


def test_annotate_records_the_details_and_an_audit_event(reg: Any) -> None:
    sessions, cfg = reg
    out = annotate(sessions, cfg, "1/M/2026", {"nomor": "045/UND/XI/2026", "perihal": "Rapat koordinasi", "asal": "Bupati",
                                               "sifat": "segera", "tanggal": "30-11-2026"}, by="Operator Satu")
    assert out["changed"] == ["nomor", "tanggal", "asal", "perihal", "sifat"]
    assert out["details"]["perihal"] == "Rapat koordinasi" and out["updated_by"] == "Operator Satu"
    again = annotate(sessions, cfg, "0001/M/2026", {"perihal": "Rapat koordinasi", "catatan": ""}, by="Operator Dua")
    assert again["changed"] == [] and again["updated_by"] == "Operator Satu"  # nothing changed, nothing written
    cleared = annotate(sessions, cfg, "0001/M/2026", {"asal": ""}, by="Operator Dua")
    assert cleared["changed"] == ["asal"] and cleared["details"]["asal"] is None
    with sessions() as s:
        events = [e for e in audit.events(s) if e.event == "letter.annotated"]
        assert [e.actor for e in events] == ["Operator Satu", "Operator Dua"]
        first = json.loads(events[0].details)
        assert first["perihal"] == "Rapat koordinasi" and first["fields"] == "nomor,tanggal,asal,perihal,sifat"
        assert {e.agenda for e in events} == {"0001/M/2026"}
        assert audit.verify_chain(s).ok


def test_a_refusal_changes_nothing(reg: Any) -> None:
    sessions, cfg = reg
    annotate(sessions, cfg, "0001/M/2026", {"perihal": "Asli"}, by="op")
    for changes in ({"perihal": "Baru", "sifat": "kilat"}, {"perihal": "Baru", "tanggal": "2099-01-01"}):
        with pytest.raises(LetterError):
            annotate(sessions, cfg, "0001/M/2026", changes, by="op")
    with pytest.raises(UnknownDocument):
        annotate(sessions, cfg, "9999/M/2026", {"perihal": "x"}, by="op")
    with pytest.raises(LetterError):
        annotate(sessions, cfg, "0001/M/2026", {"perihal": "x"}, by=" \n ")
    with sessions() as s:
        assert s.scalars(select(LetterDetails.perihal)).all() == ["Asli"]
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 1


def test_an_exempt_letter_takes_sifat_and_date_only_and_its_audit_event_says_no_more(reg: Any) -> None:
    sessions, cfg = reg
    with pytest.raises(ExemptDetailRefused):
        annotate(sessions, cfg, "0001/D/2026", {"sifat": "segera", "perihal": f"Rencana {MARKER}"}, by="op")
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(LetterDetails)) == 0
    out = annotate(sessions, cfg, "0001/D/2026", {"sifat": "sangat segera", "tanggal": "2026-11-29"}, by="op")
    assert out["exempt"] and out["details"]["sifat"] == "sangat segera"
    with sessions() as s:
        (event,) = audit.events(s)
        assert json.loads(event.details) == {"agenda": "0001/D/2026", "category": "exempt", "fields": "tanggal,sifat",
                                             "sifat": "sangat segera", "tanggal": "2026-11-29"}


def test_search_is_newest_first_and_paginated(reg: Any) -> None:
    sessions, _cfg = reg
    with sessions() as s:
        everything = s.execute(select(Document.agenda).order_by(Document.received_at.desc(), Document.id.desc())).scalars().all()
        pages = [search.search(s, Query(page=n, per_page=25)) for n in (1, 2, 3, 4)]
    assert [p.total for p in pages] == [60] * 4 and pages[0].pages == 3
    assert [i["agenda"] for p in pages for i in p.items] == everything
    assert pages[3].items == [] and pages[3].page == 4
    assert pages[0].as_dict()["per_page"] == 25


def test_search_finds_by_subject_number_name_agenda_and_filters(reg: Any) -> None:
    sessions, cfg = reg
    annotate(sessions, cfg, "0002/M/2026", {"nomor": "045/UND/XI/2026", "perihal": "Rapat 100% kriptografi_daerah",
                                            "sifat": "segera"}, by="op")
    annotate(sessions, cfg, "0001/K/2026", {"perihal": "Balasan rapat", "tujuan": "Bupati"}, by="op")

    def agendas(**q: Any) -> list[str]:
        with sessions() as s:
            return sorted(i["agenda"] for i in search.search(s, Query(**q), cfg.timezone).items)

    assert agendas(text="KRIPTOGRAFI") == ["0002/M/2026"]
    by_name = agendas(text="Undangan Rapat")  # 1 in 4 of the names
    assert len(by_name) == 15 and "0002/M/2026" not in by_name
    assert agendas(text="rapat") == sorted({*by_name, "0001/K/2026", "0002/M/2026"})
    assert agendas(text="100%") == ["0002/M/2026"] and agendas(text="kriptografi_daerah") == ["0002/M/2026"]
    assert agendas(text="100_") == ["0002/M/2026"] and agendas(text="%") == agendas(text="_") == agendas()  # no wildcards
    assert agendas(text="kripto") == ["0002/M/2026"] and agendas(text="ptografi") == []  # a word matches the words it begins
    assert agendas(text="UND/XI") == ["0002/M/2026"] and agendas(nomor="045") == ["0002/M/2026"]
    assert agendas(perihal="balasan") == ["0001/K/2026"] and agendas(sifat="SEGERA") == ["0002/M/2026"]
    assert agendas(text="0003/m/2026") == ["0003/M/2026"] and agendas(agenda="0003/M") == ["0003/M/2026"]
    assert agendas(text="Edaran") and agendas(text="Koordinasi") and not agendas(text="Edaran Koordinasi")  # every word
    assert agendas(text="rapat", category="outbound") == [a for a in agendas(text="rapat") if "/K/" in a]
    exempt = agendas(category="dikecualikan")
    assert len(exempt) == 6 and all("/D/" in a for a in exempt)
    with sessions() as s:
        days = sorted({i["received_date"] for i in search.search(s, Query(per_page=200), cfg.timezone).items})
        one = search.search(s, Query(date_from=dt.date.fromisoformat(days[3]), date_to=dt.date.fromisoformat(days[3])),
                            cfg.timezone)
    assert one.total >= 1 and {i["received_date"] for i in one.items} == {days[3]}


def test_exempt_letters_show_agenda_date_and_sifat_only_and_are_never_matched_by_name_or_subject(reg: Any) -> None:
    sessions, cfg = reg
    annotate(sessions, cfg, "0001/D/2026", {"sifat": "segera", "tanggal": "2026-11-29"}, by="op")
    with sessions.begin() as s:  # a detail stored by mistake (by hand, by an old bug) is not shown nor matched
        d = s.scalars(select(Document).where(Document.agenda == "0001/D/2026")).one()
        d.original_name = f"Rencana {MARKER}.pdf"
        row = s.get(LetterDetails, d.id)
        row.perihal, row.nomor, row.catatan = f"perihal {MARKER}", f"nomor {MARKER}", f"catatan {MARKER}"
    with sessions() as s:
        for q in (Query(text=MARKER), Query(perihal=MARKER), Query(nomor=MARKER), Query(text="Rencana")):
            assert search.search(s, q).total == 0
        (item,) = search.search(s, Query(text="0001/D/2026")).items
        page = view.document(s, "0001/D/2026")
        everything = json.dumps([search.search(s, Query(per_page=200)).as_dict(), page, item])
    assert MARKER not in everything and "sealed" not in everything
    assert item["exempt"] and item["name"] is None and item["perihal"] is None and item["sifat"] == "segera"
    assert item["tanggal"] == "2026-11-29"
    assert page["details"] == {"nomor": None, "tanggal": "2026-11-29", "asal": None, "tujuan": None, "perihal": None,
                               "sifat": "segera", "catatan": None}


def test_the_query_is_read_from_a_form(reg: Any) -> None:
    q = Query.from_params({"text": "  rapat   koordinasi ", "category": "masuk", "date_from": "2026-11-02", "page": "3"})
    assert (q.text, q.category, q.date_from, q.page, q.per_page) == ("rapat koordinasi", "inbound", dt.date(2026, 11, 2), 3, 50)
    for bad in ({"category": "rahasia"}, {"date_to": "30-11"}, {"page": "-1"}):
        with pytest.raises(LetterError):
            Query.from_params(bad)


def test_a_documents_page_has_its_details_verified_copies_and_events(reg: Any) -> None:
    sessions, cfg = reg
    now = dt.datetime(2026, 11, 30, 3, tzinfo=dt.UTC)
    with sessions.begin() as s:
        doc = s.scalars(select(Document).where(Document.agenda == "0002/M/2026")).one()
        a = Drive(name="backup-a", uuid="u-a", token_id="t-a", registered_at=now, last_verified_at=now)
        b = Drive(name="backup-b", uuid="u-b", token_id="t-b", registered_at=now)
        s.add_all([a, b])
        s.flush()
        s.add(Copy(drive_id=a.id, document_id=doc.id, drive_path="x", size=1, sha256="0" * 64, verified_at=now))
        audit.documents_filed(s, [doc])
    annotate(sessions, cfg, "0002/M/2026", {"perihal": "Rapat", "catatan": "baris 1\nbaris 2"}, by="op")
    annotate(sessions, cfg, "0003/M/2026", {"perihal": "Lain"}, by="op")
    with sessions() as s:
        page = view.document(s, "2/m/2026", cfg.timezone)
        assert view.document(s, str(page["id"])) == view.document(s, page["id"]) == view.document(s, "0002/M/2026")
        assert view.document(s, "9999/M/2026") is None and view.document(s, "bukan agenda") is None
    assert page["details"]["catatan"] == "baris 1\nbaris 2" and page["details_updated_by"] == "op"
    assert page["copies"] == [{"drive": "backup-a", "verified_copy": True, "verified_at": now.isoformat(),
                               "drive_last_verified_at": now.isoformat()}]
    assert [d["verified_copy"] for d in page["drives"]] == [True, False]
    assert [e["event"] for e in page["events"]] == ["document.filed", "letter.annotated"]
    json.dumps(page)


def test_an_exempt_documents_events_show_no_plaintext_size_or_hash(reg: Any) -> None:
    sessions, _cfg = reg
    with sessions.begin() as s:
        doc = s.scalars(select(Document).where(Document.agenda == "0001/D/2026")).one()
        audit.documents_filed(s, [doc])
        audit.record(s, "document.filed", agenda=doc.agenda, size=doc.size, sha256=doc.sha256)  # as an old release did
    with sessions() as s:
        page = view.document(s, "0001/D/2026")
    assert [e["event"] for e in page["events"]] == ["document.filed", "document.encrypted", "document.filed"]
    text = json.dumps(page)
    assert str(doc.size) not in text and doc.sha256 not in text and page["sha256"] == doc.ciphertext_sha256


def test_details_of_a_row(reg: Any) -> None:
    assert Details.of(None).is_empty() and Details(sifat="biasa").as_dict()["sifat"] == "biasa"
    assert details.FIELDS == ("nomor", "tanggal", "asal", "tujuan", "perihal", "sifat", "catatan")


def test_filings_new_documents_are_indexed_as_read_back_and_a_gap_is_read_from_the_register(tmp_path: Path) -> None:
    from naskahd.register import LetterWord

    def words_of(url: str, new: str) -> tuple[list[tuple[str, int, str]], list[int]]:
        sessions = fill(url, 40)
        with sessions() as s:
            docs = [index.New(d.id, d.category, d.number, d.original_name) for d in s.scalars(select(Document).order_by(Document.id))]
        counts = []
        with sessions.begin() as s:
            if new == "given":  # as filing gives them: all of them, then (nothing new above) none
                counts += [index.catch_up(s, new=docs[:30]), index.catch_up(s, new=docs[30:])]
            elif new == "gap":  # the first ten not given (a restore's rows): read, never skipped
                counts += [index.catch_up(s, new=docs[10:30]), index.catch_up(s, new=docs[30:])]
            else:
                counts += [index.catch_up(s, limit=30), index.catch_up(s)]
        with sessions() as s:
            return sorted(tuple(r) for r in s.execute(select(LetterWord.word, LetterWord.document_id, LetterWord.field))), counts

    read_back, counts = words_of(f"sqlite:///{tmp_path / 'a.sqlite3'}", "read")
    assert counts == [30, 10] and len({d for _w, d, _f in read_back}) == 40
    assert words_of(f"sqlite:///{tmp_path / 'b.sqlite3'}", "given") == (read_back, [30, 10])
    assert words_of(f"sqlite:///{tmp_path / 'c.sqlite3'}", "gap") == (read_back, [40, 0])  # all read at once
