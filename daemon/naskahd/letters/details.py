"""A letter's register details (SOP step 1's "form input data"): what is accepted, and
recording it.

``parse_changes`` is pure: it turns what a person typed (CLI flags, a web form) into clean
values or refuses with a ``LetterError`` naming the field. ``annotate`` applies the
changes to one document in one short transaction, with an audit event. An exempt
letter keeps only its agenda number, dates and sifat in clear: any other detail is refused
(``ExemptDetailRefused``) before anything is changed, and its audit event names only which
fields changed, never what they say.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from naskahd.categories import EXEMPT, INBOUND, LETTER, OUTBOUND
from naskahd.errors import ExemptDetailRefused, LetterError, UnknownDocument
from naskahd.i18n import _
from naskahd.register.letters import LIMITS

FIELDS = ("nomor", "tanggal", "asal", "tujuan", "perihal", "sifat", "catatan")
EXEMPT_CLEAR = frozenset({"tanggal", "sifat"})  # what an exempt letter may keep in clear
MAX_BY = 100
EARLIEST = dt.date(1900, 1, 1)

# Control characters go (a newline only survives in the note), and so do the invisible
# characters that reorder or hide text (bidi overrides, zero-width ones): what is stored
# reads the same in a terminal, a PDF and a browser.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_DATE_FORMS = (
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), (1, 2, 3)),  # 2026-11-30
    (re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})"), (3, 2, 1)),  # 30-11-2026, 30/11/2026, 30.11.2026
)
_AGENDA = re.compile(r"\s*(\d{1,9})\s*[/-]\s*([A-Za-z])\s*[/-]\s*(\d{4})\s*")


@dataclass(frozen=True)
class Details:
    """A letter's details; None where nothing is recorded."""

    nomor: str | None = None
    tanggal: dt.date | None = None
    asal: str | None = None
    tujuan: str | None = None
    perihal: str | None = None
    sifat: str | None = None
    catatan: str | None = None

    @classmethod
    def of(cls, row: Any) -> Details:
        """From a ``LetterDetails`` row (or None: nothing recorded yet)."""
        if row is None:
            return cls()
        return cls(**{f: getattr(row, f) for f in FIELDS})

    def as_dict(self) -> dict[str, str | None]:
        """JSON-safe: the date as ISO 8601 (``2026-11-30``)."""
        return {f: (v.isoformat() if isinstance(v, dt.date) else v) for f in FIELDS for v in [getattr(self, f)]}

    def is_empty(self) -> bool:
        return all(getattr(self, f) is None for f in FIELDS)


def normalize_agenda(text: str) -> str:
    """``1/m/2026`` or ``0001-M-2026`` (an archive name's stem) → ``0001/M/2026``."""
    found = _AGENDA.fullmatch(text or "")
    letters = {v: k for k, v in LETTER.items()}
    if found is None or found.group(2).upper() not in letters:
        raise LetterError(_("{value!r} is not an agenda number; write it as the register does, for example "
                            "0001/M/2026 (M inbound, K outbound, D exempt)").format(value=text), field="agenda")
    return f"{int(found.group(1)):04d}/{found.group(2).upper()}/{found.group(3)}"


def clean_text(value: str, *, multiline: bool = False) -> str:
    """``value`` as stored: NFC, no control or invisible characters, spaces collapsed
    (a note keeps its line breaks, each line tidied)."""
    text = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    if multiline:
        lines = [" ".join("".join(c if unicodedata.category(c) != "Cc" else " " for c in line).split())
                 for line in text.split("\n")]
        return "\n".join(lines).strip("\n")
    return " ".join("".join(c if unicodedata.category(c) != "Cc" else " " for c in text).split())


def parse_date(text: str, *, today: dt.date) -> dt.date:
    """A letter's date: ``2026-11-30``, ``30-11-2026``, ``30/11/2026`` or ``30.11.2026``;
    not before 1900 and not after ``today`` (a letter is scanned after it is dated)."""
    for pattern, (y, m, d) in _DATE_FORMS:
        found = pattern.fullmatch(text.strip())
        if found is None:
            continue
        try:
            when = dt.date(int(found.group(y)), int(found.group(m)), int(found.group(d)))
        except ValueError:
            break
        if when < EARLIEST or when > today:
            raise LetterError(_("tanggal surat {value} is not a plausible letter date: it must lie between "
                                "{earliest} and today ({today})").format(value=when.isoformat(), earliest=EARLIEST.isoformat(),
                                                                        today=today.isoformat()), field="tanggal")
        return when
    raise LetterError(_("tanggal surat {value!r} is not a date; write it as 30-11-2026 or 2026-11-30")
                      .format(value=text), field="tanggal")


def parse_sifat(text: str, choices: Sequence[str]) -> str:
    """One of the configured choices (``[letters] sifat``), matched regardless of case."""
    wanted = " ".join(text.split()).casefold()
    for choice in choices:
        if choice.casefold() == wanted:
            return choice
    raise LetterError(_("sifat {value!r} is not one of the choices: {choices} (set in [letters] sifat)")
                      .format(value=text, choices=", ".join(choices)), field="sifat")


def _label(name: str) -> str:
    return {"nomor": _("nomor surat (letter number)"), "tanggal": _("tanggal surat (letter date)"),
            "asal": _("asal (sender)"), "tujuan": _("tujuan (addressee)"), "perihal": _("perihal (subject)"),
            "sifat": _("sifat"), "catatan": _("catatan (note)")}[name]


def parse_changes(changes: Mapping[str, str | None], *, agenda: str, category: str, sifat: Sequence[str],
                  today: dt.date) -> dict[str, Any]:
    """The changes as clean values (None: clear the field), or a ``LetterError``.

    ``changes`` maps a field of ``FIELDS`` to what was typed; a field not given is left as
    it is, an empty value clears it. Refused as a whole, before anything is changed: an
    unknown field, a detail an exempt letter may not keep in clear, ``asal`` on an
    outbound letter or ``tujuan`` on an inbound one, a value too long, a bad date or sifat.
    """
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise LetterError(_("unknown letter detail(s) {names}; the details are: {known}")
                          .format(names=", ".join(unknown), known=", ".join(FIELDS)), field=unknown[0])
    given = {k: v for k, v in changes.items() if v is not None and clean_text(v, multiline=k == "catatan")}
    if category == EXEMPT:
        refused = [f for f in FIELDS if f in given and f not in EXEMPT_CLEAR]
        if refused:
            raise ExemptDetailRefused(agenda=agenda, fields=", ".join(_label(f) for f in refused), field=refused[0])
    if category == OUTBOUND and "asal" in given:
        raise LetterError(_("{agenda} is an outbound letter: record whom it is addressed to as tujuan, "
                            "not asal").format(agenda=agenda), field="asal")
    if category == INBOUND and "tujuan" in given:
        raise LetterError(_("{agenda} is an inbound letter: record who sent it as asal, not tujuan")
                          .format(agenda=agenda), field="tujuan")
    out: dict[str, Any] = {}
    for name in FIELDS:
        if name not in changes:
            continue
        raw = changes[name]
        text = clean_text(raw, multiline=name == "catatan") if raw is not None else ""
        if not text:
            out[name] = None
        elif name == "tanggal":
            out[name] = parse_date(text, today=today)
        elif name == "sifat":
            out[name] = parse_sifat(text, sifat)
        else:
            if len(text) > LIMITS[name]:
                raise LetterError(_("{field} is {n} characters long; at most {limit} are kept").format(
                    field=_label(name), n=len(text), limit=LIMITS[name]), field=name)
            out[name] = text
    return out


def check_by(by: str) -> str:
    """Who made the change, as the audit trail records it."""
    name = " ".join((by or "").split())
    if not name or len(name) > MAX_BY or not name.isprintable():
        raise LetterError(_("the name of who makes the change must be 1 to {n} printable characters")
                          .format(n=MAX_BY), field="by")
    return name


def find_document(session: Session, agenda: str) -> Any:
    from naskahd.register import Document

    wanted = normalize_agenda(agenda)
    doc = session.scalars(select(Document).where(Document.agenda == wanted)).one_or_none()
    if doc is None:
        raise UnknownDocument(agenda=wanted, field="agenda")
    return doc


def audit_details(agenda: str, category: str, changed: Sequence[str], after: Details) -> dict[str, Any]:
    """What the audit trail keeps of an annotation: for an exempt letter only which fields
    changed and its clear ones (tanggal, sifat); for the others their new values too."""
    values = after.as_dict()
    shown = [f for f in changed if category != EXEMPT or f in EXEMPT_CLEAR]
    return {"agenda": agenda, "category": category, "fields": ",".join(changed),
            **{f: values[f] for f in shown}}


def annotate(sessions: sessionmaker[Session], cfg: Any, agenda: str, changes: Mapping[str, str | None], *,
             by: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Record ``changes`` to the details of the document ``agenda``; returns what
    ``letters.view.summary`` shows of it plus ``changed`` (the fields that changed).

    Nothing is written when nothing changes; a refusal changes nothing.
    """
    from naskahd import audit
    from naskahd.letters import index
    from naskahd.register import LetterDetails

    who = check_by(by)
    when = now or dt.datetime.now(dt.UTC)
    today = when.astimezone(cfg.timezone).date()
    with sessions.begin() as s:
        doc = find_document(s, agenda)
        clean = parse_changes(changes, agenda=doc.agenda, category=doc.category, sifat=cfg.sifat, today=today)
        row = s.get(LetterDetails, doc.id)
        before = Details.of(row)
        after = replace(before, **clean)
        changed = [f for f in FIELDS if getattr(before, f) != getattr(after, f)]
        if changed:
            if row is None:
                row = LetterDetails(document_id=doc.id)
                s.add(row)
            for name in changed:
                setattr(row, name, getattr(after, name))
            row.updated_at, row.updated_by = when, who
            if {"nomor", "perihal"} & set(changed):
                s.flush()
                index.refresh(s, doc.id)
            audit.record(s, "letter.annotated", actor=who, at=when, **audit_details(doc.agenda, doc.category, changed, after))
        return {"agenda": doc.agenda, "category": doc.category, "exempt": doc.category == EXEMPT,
                "changed": changed, "details": after.as_dict(),
                "updated_at": row.updated_at.astimezone(dt.UTC).isoformat() if row is not None else None,
                "updated_by": row.updated_by if row is not None else None}
