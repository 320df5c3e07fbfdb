"""A report's facts, gathered from the register: pure functions over a session.

``collect`` returns a snapshot, a JSON-able dict that holds everything a rendering needs
and nothing about when or how it is rendered, so that the same snapshot always renders
to the same bytes and ``fingerprint(snapshot)`` changes exactly when the data behind a
report changes (a late document in its period, a failed verification, a lost copy).

Exempt letters: the snapshot never holds their names (``name`` is None) and shows the
hash of their ciphertext (what the archive and the drives hold), not of their content.

A document's letter details (issue 21, ``letters/details.py``) are in its ``letter`` entry,
present only when some are recorded: recording them changes the fingerprint of the
reports of its period (they are out of date), and a register without any keeps the
fingerprints of the reports made before details existed. An exempt letter's entry holds
its letter date and sifat only.

Backup figures come from the drives issue: a module ``naskahd.drives.reporting`` with
``backup_facts(session, start_utc, end_utc, document_ids) -> dict`` shaped like
``NO_DRIVES`` plugs in here; until it exists, the report says no drive is registered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import zlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from naskahd import naming, reasons
from naskahd.categories import CATEGORIES, EXEMPT
from naskahd.register.letters import LetterDetails
from naskahd.register.models import Document, DocumentState, Duplicate, ReviewItem
from naskahd.report.period import Period

SNAPSHOT_VERSION = 1
LETTER_FIELDS = ("nomor", "tanggal", "asal", "tujuan", "perihal", "sifat", "catatan")  # letters.details.FIELDS

# What a backup provider returns (times as ISO 8601 UTC strings):
#   drives:        [{"label", "registered_at", "last_seen_at"}]
#   syncs:         [{"drive", "at", "copied", "verified", "ok"}]       within the period
#   verifications: [{"drive", "at", "checked", "failed", "ok"}]        within the period
#   copies:        {document_id: [{"drive", "verified_at"}]}           verified copies now held
NO_DRIVES: dict[str, Any] = {"available": False, "drives": [], "syncs": [], "verifications": [], "copies": {}}

BackupFacts = Callable[[Session, dt.datetime, dt.datetime, list[int]], dict[str, Any]]


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat()


def backup_provider() -> BackupFacts | None:
    try:
        module = importlib.import_module("naskahd.drives.reporting")
    except ImportError:
        return None
    return getattr(module, "backup_facts", None)


_COLUMNS = (Document.id, Document.agenda, Document.category, Document.received_at, Document.original_name, Document.size,
            Document.ciphertext_size, Document.sha256, Document.ciphertext_sha256, Document.state,
            *(getattr(LetterDetails, f) for f in LETTER_FIELDS))


def documents(session: Session, lo: dt.datetime, hi: dt.datetime) -> list[Any]:
    """The period's documents, only the columns a report shows (rows, not ORM objects:
    a month of 10,000 loads in a fraction of the time)."""
    query = (select(*_COLUMNS).outerjoin(LetterDetails, LetterDetails.document_id == Document.id)
             .where(Document.received_at >= lo, Document.received_at < hi)
             .order_by(Document.received_at, Document.id))
    return list(session.execute(query))


def letter(d: Any) -> dict[str, Any] | None:
    """A document's letter details (issue 21) as a report keeps them, or None when none are
    recorded (so a report made before details existed keeps its fingerprint). An exempt
    letter's: its date and sifat only."""
    values = {f: getattr(d, f) for f in LETTER_FIELDS}
    if d.category == EXEMPT:
        values = {f: (v if f in ("tanggal", "sifat") else None) for f, v in values.items()}
    if all(v is None for v in values.values()):
        return None
    return {f: (v.isoformat() if isinstance(v, dt.date) else v) for f, v in values.items()}


def _document_row(d: Any, copies: list[dict[str, Any]]) -> dict[str, Any]:
    exempt = d.category == EXEMPT
    details = letter(d)
    return {
        "agenda": d.agenda, "category": d.category, "received_at": _iso(d.received_at),
        "name": None if exempt else d.original_name,
        "size": d.size if not exempt or d.ciphertext_size is None else d.ciphertext_size,
        "hash": (d.ciphertext_sha256 or "") if exempt else d.sha256,
        "state": d.state.value,
        "copies": sorted(copies, key=lambda c: (c["drive"], c["verified_at"] or "")),
        **({"letter": details} if details is not None else {}),
    }


def daily(docs: list[dict[str, Any]], period: Period, tz: Any) -> list[dict[str, Any]]:
    counts = {day.isoformat(): dict.fromkeys(CATEGORIES, 0) for day in period.days()}
    for d in docs:
        day = dt.datetime.fromisoformat(d["received_at"]).astimezone(tz).date().isoformat()
        if day in counts:
            counts[day][d["category"]] += 1
    return [{"date": day, **c} for day, c in counts.items()]


def totals(docs: list[dict[str, Any]]) -> dict[str, int]:
    out = dict.fromkeys(CATEGORIES, 0)
    for d in docs:
        out[d["category"]] += 1
    out["total"] = len(docs)
    out["bytes"] = sum(d["size"] for d in docs)
    return out


def duplicates(session: Session, lo: dt.datetime, hi: dt.datetime) -> list[dict[str, Any]]:
    query = (select(Duplicate.detected_at, Document.agenda, Document.category)
             .join(Document, Duplicate.document_id == Document.id)
             .where(Duplicate.detected_at >= lo, Duplicate.detected_at < hi).order_by(Duplicate.detected_at, Duplicate.id))
    return [{"at": _iso(at), "agenda": agenda, "category": category} for at, agenda, category in session.execute(query)]


def _without_paths(value: Any) -> Any:
    """A stored reason's parameters with every path dropped (an OS error's path can name
    an exempt letter); what remains renders as "cannot read it: permission denied"."""
    if isinstance(value, dict):
        return {k: None if k == "path" else _without_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    return value


def _exempt_reason(stored: str) -> str:
    if reasons.code_of(stored) is None:  # plain text from before reason codes: it may hold a path
        return reasons.encode("cannot_look", error="-") if "/" in stored else stored
    return json.dumps(_without_paths(json.loads(stored)), ensure_ascii=False, separators=(",", ":"))


def review_items(session: Session, lo: dt.datetime, hi: dt.datetime) -> list[dict[str, Any]]:
    """Items moved to review in the period; ``reason`` in its stored form (a code with its
    parameters: rendered in the report's language). An exempt scan's path is never
    recorded (empty): its name stays withheld, and paths are dropped from its reason."""
    query = (select(ReviewItem).where(ReviewItem.moved_at >= lo, ReviewItem.moved_at < hi)
             .order_by(ReviewItem.moved_at, ReviewItem.id))
    return [{"at": _iso(r.moved_at), "name": naming.display_name(r.source_relpath) if r.source_relpath else None,
             "reason": r.reason if r.source_relpath else _exempt_reason(r.reason)} for r in session.scalars(query)]


def backup(session: Session, lo: dt.datetime, hi: dt.datetime, docs: list[Any],
           provider: BackupFacts | None) -> tuple[dict[str, Any], dict[int, list[dict[str, Any]]]]:
    facts = dict(NO_DRIVES) if provider is None else dict(provider(session, lo, hi, [d.id for d in docs]))
    copies = {int(k): list(v) for k, v in (facts.get("copies") or {}).items()}
    ok_times = [s["at"] for s in facts.get("syncs", []) if s.get("ok")] + \
               [v["at"] for v in facts.get("verifications", []) if v.get("ok")]
    summary = {
        "available": bool(facts.get("available", provider is not None)),
        "drives": facts.get("drives", []),
        "syncs": facts.get("syncs", []),
        "verifications": facts.get("verifications", []),
        "not_on_any_drive": [d.agenda for d in docs if not copies.get(d.id)],
        "newest_verified_at": max(ok_times) if ok_times else None,
    }
    return summary, copies


def collect(session: Session, office_name: str, tz: Any, period: Period,
            provider: BackupFacts | None | str = "auto", office_place: str = "") -> dict[str, Any]:
    """Everything a report on ``period`` shows, from the register as it is now."""
    lo, hi = period.utc_bounds(tz)
    rows = documents(session, lo, hi)
    chosen = backup_provider() if provider == "auto" else provider
    backup_summary, copies = backup(session, lo, hi, rows, chosen)  # type: ignore[arg-type]
    docs = [_document_row(d, copies.get(d.id, [])) for d in rows]
    return {
        "version": SNAPSHOT_VERSION,
        "office": {"name": office_name, "place": office_place, "timezone": str(tz)},
        "period": {"kind": period.kind, "start": period.start.isoformat(), "end": period.end.isoformat()},
        "documents": docs,
        "daily": daily(docs, period, tz),
        "totals": totals(docs),
        "duplicates": duplicates(session, lo, hi),
        "review": review_items(session, lo, hi),
        "unfinished": [d["agenda"] for d in docs if d["state"] != DocumentState.FILED.value],
        "backup": backup_summary,
    }


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _register_part(snapshot: dict[str, Any]) -> bytes:
    # The office's name, place and timezone come from the configuration: they do not make
    # a report out of date.
    return canonical({k: v for k, v in snapshot.items() if k != "office"})


def fingerprint(snapshot: dict[str, Any]) -> str:
    """SHA-256 of the register's data in ``snapshot`` (all of it but ``office``)."""
    return hashlib.sha256(_register_part(snapshot)).hexdigest()


def pack(snapshot: dict[str, Any]) -> tuple[bytes, str]:
    """The snapshot as stored (zlib of JSON) and its fingerprint, serialised once."""
    part = _register_part(snapshot)
    blob = b'{"office":' + canonical(snapshot["office"]) + b',"register":' + part + b"}"
    return zlib.compress(blob, 1), hashlib.sha256(part).hexdigest()


def unpack(stored: bytes) -> dict[str, Any]:
    doc = json.loads(zlib.decompress(stored))
    return {**doc["register"], "office": doc["office"]}


def exceptions(snapshot: dict[str, Any]) -> list[tuple[str, int]]:
    """What needs a decision, as (kind, count): the executive summary words each kind."""
    out = []
    for kind, n in (("unfinished", len(snapshot["unfinished"])), ("review", len(snapshot["review"])),
                    ("duplicates", len(snapshot["duplicates"])),
                    ("not_backed_up", len(snapshot["backup"]["not_on_any_drive"])),
                    ("failed_checks", sum(1 for v in snapshot["backup"]["verifications"] if not v.get("ok"))
                     + sum(1 for s in snapshot["backup"]["syncs"] if not s.get("ok")))):
        if n:
            out.append((kind, n))
    return out
