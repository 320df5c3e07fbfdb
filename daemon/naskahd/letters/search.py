"""The register's search: documents newest first, filtered, one page at a time.

Every item is a plain dict safe to send to a browser. An exempt letter appears with its
agenda number, dates, sifat and state only: no name, no details, and it is matched by its
agenda number only (the index holds no other word of it, so that even a detail stored by
mistake could not be found through a search).

Words are looked up in the search index (letters/index.py: a word matches the words it
begins, "rapat" finds "Rapat" and "rapat-rapat"); an agenda number written out is matched
exactly. Only portable SQL: ranges on indexed columns, ``ILIKE`` for the few documents
the index does not cover yet, and one COUNT per search.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from naskahd.categories import CATEGORIES, DROP_FOLDER, EXEMPT
from naskahd.errors import LetterError
from naskahd.i18n import _
from naskahd.letters import index
from naskahd.letters.details import normalize_agenda
from naskahd.register import Document, LetterDetails

MAX_PER_PAGE = 200
RECEIVED, TANGGAL = "received", "tanggal"
DATE_FIELDS = (RECEIVED, TANGGAL)
# Matches are counted up to this many (or to the page asked for): beyond it the page says
# "more than 1,000", which costs a bounded count instead of one over every match.
COUNT_CAP = 1000
MAX_WORDS = 8
MAX_TEXT = 200
OFFICE_TZ = ZoneInfo("Asia/Jakarta")  # the configuration's default [office] timezone

# What a list shows of a document (the note is on its own page: letters/view.py).
_COLUMNS = (Document.id, Document.agenda, Document.category, Document.received_at, Document.original_name,
            Document.state, LetterDetails.nomor, LetterDetails.tanggal, LetterDetails.asal, LetterDetails.tujuan,
            LetterDetails.perihal, LetterDetails.sifat)


@dataclass(frozen=True)
class Query:
    """What to look for; empty means "any". Dates are inclusive: received dates (office
    time), or with ``date_field="tanggal"`` the letter's own date (tanggal surat)."""

    text: str = ""  # words, each found in the agenda number, the name, the letter number or the subject
    agenda: str = ""  # part of an agenda number ("0012/M", "2026")
    category: str = ""  # inbound | outbound | exempt (or masuk | keluar | dikecualikan)
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    nomor: str = ""  # part of the letter number
    perihal: str = ""  # part of the subject
    sifat: str = ""  # one of [letters] sifat, exactly (case aside)
    date_field: str = RECEIVED  # which date the range is of: received | tanggal
    page: int = 1
    per_page: int = 50

    @classmethod
    def from_params(cls, params: Mapping[str, str | None]) -> Query:
        """From a form or a query string (every value text); ``LetterError`` on bad input."""
        def text(name: str) -> str:
            return " ".join(str(params.get(name) or "").split())[:MAX_TEXT]

        def date(name: str) -> dt.date | None:
            value = text(name)
            if not value:
                return None
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise LetterError(_("{value!r} is not a date; write it as 2026-11-30").format(value=value), field=name) from None

        def number(name: str, default: int) -> int:
            value = text(name)
            if not value:
                return default
            if not value.isdigit():
                raise LetterError(_("{name} must be a whole number, not {value!r}").format(name=name, value=value), field=name)
            return int(value)

        date_field = text("date_field") or RECEIVED
        if date_field not in DATE_FIELDS:
            raise LetterError(_("the dates are of {choices}, not {value!r}").format(
                choices=" or ".join(DATE_FIELDS), value=date_field), field="date_field")
        return cls(text=text("text"), agenda=text("agenda"), category=category_of(text("category")),
                   date_from=date("date_from"), date_to=date("date_to"), nomor=text("nomor"), perihal=text("perihal"),
                   sifat=text("sifat"), date_field=date_field, page=number("page", 1), per_page=number("per_page", 50))


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    pages: int
    query: dict[str, Any] = field(default_factory=dict)  # the query as run (dates ISO)
    more: bool = False  # more than ``total`` match (counted up to COUNT_CAP or this page)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def category_of(value: str) -> str:
    """``inbound``/``masuk`` → ``inbound`` (and so on); '' stays ''; anything else refused."""
    value = value.strip().lower()
    if not value or value in CATEGORIES:
        return value
    for category, folder in DROP_FOLDER.items():
        if value == folder:
            return category
    raise LetterError(_("unknown category {value!r}; one of: {choices}").format(
        value=value, choices=", ".join(CATEGORIES)), field="category")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    return column.ilike(_like(text), escape="\\")


def _tokens(word: str) -> list[tuple[str, str]] | str:
    """One word of the text search: an agenda number written out (``0012/M/2026``, matched
    exactly), or the index words it stands for (``UND/XI``: ``und`` and ``xi``, each in any
    field)."""
    try:
        return normalize_agenda(word) if "/" in word or "-" in word else [(t, "anop") for t in index.words(word)]
    except LetterError:
        return [(t, "anop") for t in index.words(word)]


def conditions(query: Query, tz: Any = OFFICE_TZ, tail: index.Tail | None = None,
               session: Session | None = None) -> tuple[list[ColumnElement[bool]], bool]:
    """The WHERE conditions of ``query``, and whether they need the details table."""
    where, _page, details = _plan(query, tz, tail, session)
    return where, details


COMMON = 2000  # index entries: a word this common is cheaper to find by walking the newest documents


def _plan(query: Query, tz: Any, tail: index.Tail | None,
          session: Session | None) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]], bool]:
    """The conditions for counting, those for fetching a page, and whether they need the
    details table.

    ``tail``: the documents the search index does not cover yet. Every index word must
    match: the rarest (``index.estimate``, with ``session``) picks the candidates, the
    others are checked per candidate (``index.contains``), so that a common word costs
    nothing more than the rare one it is searched with. When even the rarest is common,
    a page is fetched by walking the documents newest first and checking each
    (``documents.id + 0`` keeps the planner off the candidates' list), which stops after
    a page of matches instead of sorting them all.
    """
    tail = tail or index.Tail()
    where: list[ColumnElement[bool]] = []
    page: list[ColumnElement[bool]] = []
    details = False
    tokens: list[tuple[str, str]] = []
    for word in query.text.split()[:MAX_WORDS]:
        found = _tokens(word)
        if isinstance(found, str):
            where.append(Document.agenda == found)
            page.append(where[-1])
        else:
            tokens += found
    for text, field in ((query.nomor, "o"), (query.perihal, "p")):
        tokens += [(t, field) for t in index.words(text)]
    tokens = list(dict.fromkeys(tokens))[:MAX_WORDS]
    counts = {t: index.estimate(session, *t, cap=COMMON) for t in tokens} if session is not None else {}
    tokens.sort(key=lambda t: (counts.get(t, 0), -len(t[0])))
    for k, (token, fields) in enumerate(tokens):
        extra = tail.ids(token, fields)
        if k == 0:
            candidates = Document.id.in_(index.matching(token, fields))
            walked = (Document.id + 0).in_(index.matching(token, fields)) if counts.get((token, fields), 0) >= COMMON else candidates
            where.append(or_(candidates, Document.id.in_(extra)) if extra else candidates)
            page.append(or_(walked, Document.id.in_(extra)) if extra else walked)
            continue
        condition = index.contains(token, fields)
        where.append(or_(condition, Document.id.in_(extra)) if extra else condition)
        page.append(where[-1])
    rest: list[ColumnElement[bool]] = []
    if query.agenda:
        rest.append(_agenda_part(query.agenda.strip(), session))
    if query.category:
        rest.append(Document.category == category_of(query.category))
    if query.date_field == TANGGAL and (query.date_from is not None or query.date_to is not None):
        # The letter's own date (a calendar date, no timezone), from its details.
        if query.date_from is not None:
            rest.append(LetterDetails.tanggal >= query.date_from)
        if query.date_to is not None:
            rest.append(LetterDetails.tanggal <= query.date_to)
        details = True
    else:
        if query.date_from is not None:
            rest.append(Document.received_at >= _start_of(query.date_from, tz))
        if query.date_to is not None:
            rest.append(Document.received_at < _start_of(query.date_to + dt.timedelta(days=1), tz))
    if query.sifat:
        # The configured spelling is stored; a few spellings of it keep the index usable.
        sifat = " ".join(query.sifat.split())
        rest.append(LetterDetails.sifat.in_(sorted({sifat, sifat.lower(), sifat.capitalize(), sifat.title(), sifat.upper()})))
        details = True
    return where + rest, page + rest, details


def _agenda_part(text: str, session: Session | None) -> ColumnElement[bool]:
    """Part of an agenda number. The numbers that have it are read first from the agenda
    numbers' own (unique) index, a few MB where the table is hundreds: when they are few,
    the page is those documents (no walk through the whole register for a dozen); when
    they are many, each document is checked as the newest are walked (a page is found
    soon)."""
    # Agenda numbers are upper case (register/numbering.py): a plain LIKE on the upper-cased
    # part, which SQLite checks straight from the index (ILIKE's lower() costs 2.5x).
    escaped = _like(text.upper())
    condition = Document.agenda.like(escaped, escape="\\")
    if session is None:
        return condition
    ids = list(session.scalars(select(Document.id).where(condition).limit(COMMON + 1)))
    return Document.id.in_(ids) if len(ids) <= COMMON else condition


def _start_of(day: dt.date, tz: Any) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)


def iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat()


def item(row: Any, tz: Any = OFFICE_TZ) -> dict[str, Any]:
    """A document as a list shows it (a row of ``_COLUMNS``); exempt: no name, no details
    but its letter date and sifat."""
    exempt = row.category == EXEMPT

    def clear(value: Any) -> Any:
        return None if exempt else value

    return {
        "id": row.id, "agenda": row.agenda, "category": row.category, "exempt": exempt,
        "received_at": iso(row.received_at),
        "received_date": row.received_at.astimezone(tz).date().isoformat(),
        "name": clear(row.original_name), "state": row.state.value,
        "nomor": clear(row.nomor), "tanggal": row.tanggal.isoformat() if row.tanggal else None,
        "asal": clear(row.asal), "tujuan": clear(row.tujuan), "perihal": clear(row.perihal), "sifat": row.sifat,
    }


def _joined(statement: Select[Any]) -> Select[Any]:
    return statement.outerjoin(LetterDetails, LetterDetails.document_id == Document.id)


def _single_word(query: Query) -> tuple[str, str] | None:
    """The one index word ``query`` is made of, if that is all it is."""
    found: list[tuple[str, str]] = []
    for word in query.text.split():
        tokens = _tokens(word)
        if isinstance(tokens, str):
            return None
        found += tokens
    found += [(t, "o") for t in index.words(query.nomor)] + [(t, "p") for t in index.words(query.perihal)]
    unique = list(dict.fromkeys(found))
    return unique[0] if len(unique) == 1 and not (query.category or query.date_from or query.date_to or query.sifat) else None


def search(session: Session, query: Query, tz: Any = OFFICE_TZ) -> Page:
    """One page of the documents matching ``query``, newest first (received time, then id).

    ``tz``: the office's timezone (``cfg.timezone``), for the day boundaries of the dates.
    A page past the last one is empty (``pages`` says how many there are).
    """
    per_page = max(1, min(int(query.per_page), MAX_PER_PAGE))
    page = max(1, int(query.page))
    words = query.text or query.nomor or query.perihal
    tail = index.Tail(session) if words else index.Tail()
    where, page_where, needs_details = _plan(query, tz, tail, session)
    ids = select(Document.id).select_from(Document)
    if needs_details:
        ids = _joined(ids)
    single = _single_word(query) if words and not query.agenda else None
    cap = max(COUNT_CAP, page * per_page)
    if single is not None:
        # One word and nothing else: its documents counted in the index alone (4x cheaper),
        # and those the index does not cover yet (never in it: no double count).
        inner = index.matching(*single).distinct().limit(cap + 1).subquery()
        total = session.execute(select(func.count()).select_from(inner)).scalar_one() + len(tail.ids(*single))
    else:
        inner = ids.where(*where).limit(cap + 1).subquery()
        total = session.execute(select(func.count()).select_from(inner)).scalar_one()
    more = total > cap
    total = min(total, cap)
    # The page's ids first (sorting keys, not whole rows), then their rows.
    newest = (Document.received_at.desc(), Document.id.desc())
    offset = (page - 1) * per_page
    wanted = [] if offset >= total and not more else list(  # nothing to walk the register for
        session.scalars(ids.where(*page_where).order_by(*newest).limit(per_page).offset(offset)))
    rows = session.execute(_joined(select(*_COLUMNS).select_from(Document)).where(Document.id.in_(wanted))
                           .order_by(*newest)).all() if wanted else []
    shown = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(query).items()}
    shown.update(page=page, per_page=per_page)
    # Past the counted ones there is always one more page to go to (and counted again).
    return Page(items=[item(r, tz) for r in rows], total=total, page=page, per_page=per_page,
                pages=max(1, math.ceil(total / per_page)) + more, query=shown, more=more)
