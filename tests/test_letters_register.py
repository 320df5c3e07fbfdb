"""Letter details on a real register: migration 0005 upgrading in place a register made by
the release before it, and ``naskahd annotate`` as a person runs it (a subprocess)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import inspect

from naskahd.register.db import SCHEMA_REVISION, current_revision, make_engine

from conftest import naskahd_cmd, write_config

DATA = Path(__file__).parent / "data"
MARKER = "MARKER-0004"  # in the exempt letter's name when register-0004 was made (never in the register)


def tree(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    cfg = write_config(tmp_path / "n", extra=extra)
    reg = tmp_path / "n" / "state" / "register.sqlite3"
    reg.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "register-0004.sqlite3", reg)
    from naskahd import config, installation

    with sqlite3.connect(reg) as con:  # the roots that went with it: their markers, and what waited in them
        (ident,) = con.execute("select installation_id from installation").fetchone()
    for role, root in installation.roots(config.load(str(cfg))).items():
        (root / installation.MARKER).unlink()
        installation.mark(root, role, ident)
    for rel in ("drop/tinjau/lain.pdf", "drop/duplikat/undangan rapat salinan.pdf"):
        (cfg.parent / rel).parent.mkdir(parents=True, exist_ok=True)
        (cfg.parent / rel).write_bytes(b"scan")
    return cfg, reg


def run(cfg: Path, *args: str, lang: str = "en") -> subprocess.CompletedProcess[str]:
    return subprocess.run(naskahd_cmd("--config", str(cfg), "--lang", lang, *args), capture_output=True, text=True, timeout=120)


def test_a_register_of_revision_0004_is_upgraded_in_place(tmp_path: Path) -> None:
    cfg, reg = tree(tmp_path)
    url = f"sqlite:///{reg}"
    assert current_revision(make_engine(url)) == "0004"
    out = run(cfg, "annotate", "0001/M/2026", "--perihal", "Undangan rapat", "--json")
    assert out.returncode == 0, out.stderr
    assert current_revision(make_engine(url)) == SCHEMA_REVISION  # 0005 and, with the web accounts, 0006
    names = inspect(make_engine(url))
    assert "letter_details" in names.get_table_names()
    assert {"seen_at", "seen_by"} <= {c["name"] for c in names.get_columns("duplicates")}
    assert {"ix_letter_details_nomor", "ix_letter_details_sifat", "ix_letter_details_tanggal"} <= {
        i["name"] for i in names.get_indexes("letter_details")}
    assert "ix_documents_category_received_at" in {i["name"] for i in names.get_indexes("documents")}
    with sqlite3.connect(reg) as con:  # the old events found by agenda number, as new ones are
        by_agenda = con.execute("select event, agenda from audit_events order by seq").fetchall()
    assert by_agenda == [("daemon.started", None), ("document.filed", "0001/M/2026"), ("document.filed", "0001/K/2026"),
                         ("document.filed", "0001/D/2026"), ("document.encrypted", "0001/D/2026"),
                         ("document.review", None), ("document.duplicate", "0001/M/2026"), ("daemon.stopped", None),
                         ("letter.annotated", "0001/M/2026")]
    from naskahd import audit
    from naskahd.register import open_register

    from sqlalchemy import select

    from naskahd.letters import index, search
    from naskahd.register import Document, LetterWord

    with open_register(url, create=False)() as s:
        assert audit.verify_chain(s).ok
        # The documents already registered are in the search index, an exempt one by its number only.
        assert index.watermark(s) == 3
        exempt = s.scalars(select(Document.id).where(Document.agenda == "0001/D/2026")).one()
        assert set(s.execute(select(LetterWord.word, LetterWord.field).where(LetterWord.document_id == exempt))) == {
            ("0001", "a"), ("1", "a")}
        found = {w: [i["agenda"] for i in search.search(s, search.Query(text=w)).items] for w in ("balasan", "undangan")}
        assert found == {"balasan": ["0001/K/2026"], "undangan": ["0001/M/2026"]}
        assert search.search(s, search.Query(text="rencana")).total == 0  # the exempt letter's name was sealed
    listed = json.loads(run(cfg, "list", "--json").stdout)
    assert [d["agenda"] for d in listed] == ["0001/M/2026", "0001/K/2026", "0001/D/2026"]
    review = json.loads(run(cfg, "review", "--json").stdout)
    assert [(r["name"], r["reason_code"]) for r in review] == [("lain.pdf", "no_rule")]


def test_annotate_on_the_command_line(tmp_path: Path) -> None:
    cfg, _reg = tree(tmp_path, extra='\n[letters]\nsifat = ["biasa", "segera", "kilat"]\n')
    out = run(cfg, "annotate", "1/M/2026", "--nomor", "045/UND/XI/2026", "--tanggal", "30-11-2026", "--asal", "Bupati",
              "--perihal", "Undangan rapat koordinasi", "--sifat", "Kilat", "--catatan", "dibahas Senin", "--by", "Sandiman",
              "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["agenda"] == "0001/M/2026" and result["updated_by"] == "Sandiman"
    assert result["details"] == {"nomor": "045/UND/XI/2026", "tanggal": "2026-11-30", "asal": "Bupati", "tujuan": None,
                                 "perihal": "Undangan rapat koordinasi", "sifat": "kilat", "catatan": "dibahas Senin"}
    text = run(cfg, "annotate", "0001/K/2026", "--tujuan", "Kepala Dinas", "--perihal", "Balasan")
    assert text.returncode == 0 and "0001/K/2026" in text.stdout and "tujuan" in text.stdout
    again = run(cfg, "annotate", "0001/K/2026", "--perihal", "Balasan")
    assert again.returncode == 0 and "nothing changed" in again.stdout
    # The login name is recorded when --by is not given.
    with sqlite3.connect(_reg) as con:
        actors = [a for (a,) in con.execute("select actor from audit_events where event = 'letter.annotated' order by seq")]
    assert actors[0] == "Sandiman" and actors[1].startswith("cli:")


def test_refusals_name_the_problem_in_indonesian_and_change_nothing(tmp_path: Path) -> None:
    cfg, reg = tree(tmp_path)
    before = None
    for args, words in (
        (("0001/D/2026", "--perihal", "Rencana pengamanan", "--sifat", "segera"), "dikecualikan"),
        (("0001/M/2026", "--sifat", "rahasia"), "tidak termasuk pilihan"),
        (("0001/M/2026", "--tanggal", "31-02-2026"), "bukan tanggal"),
        (("0001/M/2026", "--tujuan", "Bupati"), "surat masuk"),
        (("0009/M/2026", "--perihal", "x"), "tidak ada dokumen"),
        (("surat", "--perihal", "x"), "bukan nomor agenda"),
        (("0001/M/2026",), "sedikitnya satu data"),
    ):
        out = run(cfg, "annotate", *args, lang="id")
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert words in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
        assert "Rencana pengamanan" not in out.stderr
        with sqlite3.connect(reg) as con:
            now = con.execute("select count(*) from audit_events where event = 'letter.annotated'").fetchone()
            if con.execute("select count(*) from sqlite_master where name = 'letter_details'").fetchone()[0]:
                assert con.execute("select count(*) from letter_details").fetchone() == (0,)
        before = before or now
        assert now == before == (0,)
    exempt = run(cfg, "annotate", "0001/D/2026", "--sifat", "segera", "--tanggal", "2026-11-29", "--json")
    assert exempt.returncode == 0, exempt.stderr
    assert json.loads(exempt.stdout)["details"]["sifat"] == "segera" and MARKER not in exempt.stdout


def test_migration_0005_builds_what_the_models_say(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from naskahd.register import Base, open_register

    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    open_register(url)
    with make_engine(url).connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    ours = ("letter_details", "letter_words", "letter_index", "seen_at", "seen_by", "ix_audit_events_agenda", "'agenda'",
            "ix_documents_category_received_at")
    assert [d for d in diffs if any(name in repr(d) for name in ours)] == []
