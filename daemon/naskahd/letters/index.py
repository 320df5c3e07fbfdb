"""The register's search index: the words of each document's agenda number, name, letter
number and subject (``letter_words``), so that a search over 200,000 documents reads a
few index ranges instead of every row (bench/bench_letters.py).

A word is a run of letters and digits, lower-cased (``045/UND/XI/2026`` gives ``045``,
``und``, ``xi``, ``2026``); a search word matches the words it begins. An exempt letter
contributes its agenda number only: its name is sealed and it has no subject in clear.

Kept up to date by whoever changes what it holds, inside the same transaction: filing
(``catch_up`` after the new rows, filing/entry.py), annotating (``refresh``), and the
migration that made it (0005). ``letter_index.last_document_id`` says how far it goes:
documents above it (inserted by a path that does not call ``catch_up``, such as a
restore) are still found, by a scan of those few rows (letters/search.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from naskahd.categories import EXEMPT

WORD = re.compile(r"[^\W_]+")
MAX_WORD = 32
MAX_WORDS = 64  # per field of a document: a pathological name does not flood the index
END = "\U0010ffff"  # above every character: ``[w, w + END)`` holds every word beginning with w
CATCH_UP = 2000  # documents indexed per call of ``catch_up`` by filing (the rest next time)


def words(text: str | None) -> list[str]:
    """The words of ``text`` as the index keeps them, in order, without repeats."""
    if not text:
        return []
    folded = unicodedata.normalize("NFKC", text).casefold()
    out: dict[str, None] = {}
    for w in WORD.findall(folded):
        out.setdefault(w[:MAX_WORD])
    return list(out)[:MAX_WORDS]


def agenda_words(number: int) -> list[str]:
    """``0123/M/2025`` is found by ``0123`` and by ``123`` (the letter and the year would
    match a third of the register each: the whole number is matched exactly instead)."""
    return list(dict.fromkeys((f"{number:04d}", str(number))))


def entries(document_id: int, category: str, number: int, name: str | None, nomor: str | None,
            perihal: str | None) -> list[dict[str, Any]]:
    """The ``letter_words`` rows of one document."""
    fields = {"a": agenda_words(number)}
    if category != EXEMPT:
        fields.update(n=words(name), o=words(nomor), p=words(perihal))
    return [{"word": w, "document_id": document_id, "field": f} for f, ws in fields.items() for w in ws]


def _tables() -> tuple[Any, Any, Any, Any]:
    from naskahd.register import Document, LetterDetails, LetterIndex, LetterWord

    return Document, LetterDetails, LetterIndex, LetterWord


def watermark(session: Session) -> int:
    """The highest document id the index covers (0 when it covers none)."""
    _d, _l, LetterIndex, _w = _tables()
    return session.scalar(select(LetterIndex.last_document_id).where(LetterIndex.id == 1)) or 0


def _rows(session: Session, ids: Iterable[int] | None = None, above: int | None = None, limit: int | None = None) -> list[Any]:
    Document, LetterDetails, _i, _w = _tables()
    query = (select(Document.id, Document.category, Document.number, Document.original_name, LetterDetails.nomor,
                    LetterDetails.perihal)
             .outerjoin(LetterDetails, LetterDetails.document_id == Document.id).order_by(Document.id))
    if ids is not None:
        query = query.where(Document.id.in_(list(ids)))
    if above is not None:
        query = query.where(Document.id > above)
    if limit is not None:
        query = query.limit(limit)
    return list(session.execute(query))


def _insert(session: Session, rows: Iterable[Any]) -> None:
    _d, _l, _i, LetterWord = _tables()
    values = [e for r in rows for e in entries(r.id, r.category, r.number, r.original_name, r.nomor, r.perihal)]
    table = LetterWord.__table__  # a Core INSERT: the ORM's bulk path costs a third more per row, for nothing here
    for k in range(0, len(values), 5000):
        session.execute(insert(table), values[k:k + 5000])


class New(NamedTuple):
    """A document just inserted, as ``_rows`` would read it back (a new one has no details)."""

    id: int
    category: str
    number: int
    original_name: str | None
    nomor: None = None
    perihal: None = None


def catch_up(session: Session, limit: int | None = CATCH_UP, new: Sequence[New] = ()) -> int:
    """Index the documents above the watermark (at most ``limit``, in id order) inside the
    caller's transaction; returns how many. Moving the watermark takes the write lock first,
    so two writers never index the same documents.

    ``new``: the documents the caller has just inserted in this transaction (filing). When
    they follow the watermark without a gap (ids ``watermark + 1`` onwards), they are indexed
    as they are, without being read back; otherwise the register is read. (Documents above
    them, if any, are found by the search's scan above the watermark and indexed later.)"""
    _d, _l, LetterIndex, LetterWord = _tables()
    moved = session.execute(update(LetterIndex).where(LetterIndex.id == 1)
                            .values(last_document_id=LetterIndex.last_document_id).returning(LetterIndex.last_document_id)).first()
    if moved is None:
        session.execute(insert(LetterIndex).values(id=1, last_document_id=0))
        start = 0
    else:
        start = moved[0]
    rows: Sequence[Any] = sorted(new, key=lambda r: r.id)
    if not rows or rows[0].id != start + 1 or rows[-1].id != start + len(rows) or (limit is not None and len(rows) > limit):
        rows = _rows(session, above=start, limit=limit)
    if not rows:
        return 0
    session.execute(delete(LetterWord).where(LetterWord.document_id > start))  # left by a refresh above the mark
    _insert(session, rows)
    session.execute(update(LetterIndex).where(LetterIndex.id == 1).values(last_document_id=rows[-1].id))
    return len(rows)


def refresh(session: Session, document_id: int) -> None:
    """A document's words again (its details changed), if the index covers it already."""
    _d, _l, _i, LetterWord = _tables()
    if document_id > watermark(session):
        return  # found by the scan above the watermark until ``catch_up`` reaches it
    session.execute(delete(LetterWord).where(LetterWord.document_id == document_id))
    _insert(session, _rows(session, ids=[document_id]))


class Tail:
    """The documents above the watermark, indexed in memory for one search (normally none:
    filing indexes what it registers), so that they match exactly as indexed ones do."""

    def __init__(self, session: Session | None = None, limit: int = 100_000) -> None:
        self.rows = [] if session is None else [
            e for r in _rows(session, above=watermark(session), limit=limit)
            for e in entries(r.id, r.category, r.number, r.original_name, r.nomor, r.perihal)]

    def ids(self, word: str, fields: str = "anop") -> list[int]:
        return sorted({e["document_id"] for e in self.rows if e["field"] in fields and e["word"].startswith(word)})


def matching(word: str, fields: str = "anop") -> Any:
    """The ids of the indexed documents with a word beginning with ``word`` (one word, as
    ``words`` gives it) in one of ``fields``: a subquery."""
    _d, _l, _i, LetterWord = _tables()
    query = select(LetterWord.document_id).where(LetterWord.word >= word, LetterWord.word < word + END)
    if fields != "anop":
        query = query.where(LetterWord.field.in_(list(fields)))
    return query


def contains(word: str, fields: str = "anop") -> Any:
    """``EXISTS`` a word beginning with ``word`` for the outer query's document: checked
    per candidate through ``ix_letter_words_document_id`` (a document has a few dozen
    words), instead of gathering every document that has it."""
    Document, _l, _i, LetterWord = _tables()
    query = select(LetterWord.document_id).where(LetterWord.document_id == Document.id, LetterWord.word >= word,
                                                 LetterWord.word < word + END)
    if fields != "anop":
        query = query.where(LetterWord.field.in_(list(fields)))
    return query.exists()


def estimate(session: Session, word: str, fields: str = "anop", cap: int = 2000) -> int:
    """How many index entries begin with ``word``, counted up to ``cap`` (a bounded range
    scan): which word of a search is the rarest."""
    inner = matching(word, fields).limit(cap).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)
