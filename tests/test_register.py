"""Agenda numbering and the schema, on a real SQLite register migrated by Alembic."""

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from naskahd.register import AgendaCounter, Document, allocate_number, format_agenda, open_register
from naskahd.register.db import make_engine


def test_format() -> None:
    assert format_agenda(1, "inbound", 2026) == "0001/M/2026"
    assert format_agenda(12345, "exempt", 2027) == "12345/D/2027"
    assert format_agenda(7, "outbound", 2026) == "0007/K/2026"


def test_numbers_count_per_category_per_year_and_a_rollback_leaves_no_gap(tmp_path: Path) -> None:
    sessions = open_register(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    with sessions.begin() as s:
        assert [allocate_number(s, "inbound", 2026) for _ in range(3)] == [1, 2, 3]
        assert allocate_number(s, "outbound", 2026) == 1
        assert allocate_number(s, "inbound", 2027) == 1
    with pytest.raises(RuntimeError), sessions.begin() as s:
        assert allocate_number(s, "inbound", 2026) == 4
        raise RuntimeError("crash before commit")
    with sessions.begin() as s:
        assert allocate_number(s, "inbound", 2026) == 4
        assert s.get(AgendaCounter, ("inbound", 2026)).last_number == 4


def test_migrations_build_the_models_schema_and_are_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    open_register(url)
    open_register(url)  # second start: nothing to do
    names = set(inspect(make_engine(url)).get_table_names())
    assert {"documents", "agenda_counters", "duplicates", "review_items", "alembic_version"} <= names


def test_one_row_per_content(tmp_path: Path) -> None:
    sessions = open_register(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    now = dt.datetime.now(dt.UTC)

    def doc(n: int) -> Document:
        return Document(agenda=f"{n}", category="inbound", year=2026, number=n, source_relpath=b"x",
                        archive_path=f"p{n}", size=1, sha256="a" * 64, received_at=now)

    with sessions.begin() as s:
        s.add(doc(1))
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.add(doc(2))
    with sessions() as s:
        (row,) = s.scalars(select(Document)).all()
        assert row.received_at == now.replace(microsecond=row.received_at.microsecond) and row.received_at.tzinfo is not None


def test_schema_revision_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from naskahd.register.db import MIGRATIONS, SCHEMA_REVISION

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_REVISION


def test_a_current_register_opens_without_importing_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    open_register(url)
    code = f"import sys; from naskahd.register import open_register; open_register({url!r}); print('alembic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
