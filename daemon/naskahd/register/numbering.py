"""Agenda numbers: per category per calendar year, gapless, never reused.

The number is allocated inside the same transaction that inserts the document, so a
crash rolls both back together: no gap, no reuse.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from naskahd.categories import LETTER
from naskahd.register.models import AgendaCounter


def format_agenda(number: int, category: str, year: int) -> str:
    """``0007/D/2026``: number (at least four digits), category letter, year."""
    return f"{number:04d}/{LETTER[category]}/{year}"


def agenda_stem(number: int, category: str, year: int) -> str:
    """The agenda number as it starts archive file names: ``0007-D-2026``."""
    return format_agenda(number, category, year).replace("/", "-")


def allocate_numbers(session: Session, category: str, year: int, count: int) -> range:
    """The next ``count`` numbers for (category, year); the caller's transaction must commit them.

    The counter row is read with FOR UPDATE (a row lock on PostgreSQL; SQLite has one
    writer anyway) and moved on once for the whole batch.
    """
    counter = session.execute(
        select(AgendaCounter).where(AgendaCounter.category == category, AgendaCounter.year == year).with_for_update()
    ).scalar_one_or_none()
    if counter is None:
        counter = AgendaCounter(category=category, year=year, last_number=0)
        session.add(counter)
    first = counter.last_number + 1
    counter.last_number += count
    session.flush()
    return range(first, first + count)


def allocate_number(session: Session, category: str, year: int) -> int:
    """The next number for (category, year); the caller's transaction must commit it."""
    return allocate_numbers(session, category, year, 1)[0]
