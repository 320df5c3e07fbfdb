"""One document's page: its register entry and details, which registered drives hold a
verified copy of it, and its audit events. A plain dict, safe to send to a browser.

An exempt letter shows its agenda number, dates, sifat, state and what the archive and
drives hold of it (its ciphertext); never its name, its plaintext's size or hash, or any
detail but those kept in clear. Its audit events are shown with an allowlist of keys.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from naskahd.categories import EXEMPT
from naskahd.errors import LetterError
from naskahd.letters.details import Details, normalize_agenda
from naskahd.letters.search import OFFICE_TZ, iso
from naskahd.register import AuditEvent, Copy, Document, Drive, Duplicate, LetterDetails

# What an exempt document's audit events may show (no plaintext size or hash, no name).
EXEMPT_EVENT_KEYS = frozenset({"agenda", "category", "fields", "tanggal", "sifat", "ciphertext_sha256", "ciphertext_size",
                               "duplicate_of", "exempt", "reason", "to", "drive"})
MAX_EVENTS = 500


def lookup(session: Session, agenda_or_id: str | int) -> Document | None:
    """The document with that id (an int, or digits) or agenda number (``0001/M/2026``)."""
    if isinstance(agenda_or_id, int) or (isinstance(agenda_or_id, str) and agenda_or_id.strip().isdigit()):
        return session.get(Document, int(agenda_or_id))
    try:
        agenda = normalize_agenda(str(agenda_or_id))
    except LetterError:
        return None
    return session.scalars(select(Document).where(Document.agenda == agenda)).one_or_none()


def _event(row: AuditEvent, exempt: bool) -> dict[str, Any]:
    details = json.loads(row.details)
    if exempt:
        details = {k: v for k, v in details.items() if k in EXEMPT_EVENT_KEYS}
    return {"seq": row.seq, "at": iso(row.at), "event": row.event, "actor": row.actor, "details": details}


def document(session: Session, agenda_or_id: str | int, tz: Any = OFFICE_TZ) -> dict[str, Any] | None:
    """Everything a document's page shows, or None when there is no such document."""
    doc = lookup(session, agenda_or_id)
    if doc is None:
        return None
    exempt = doc.category == EXEMPT
    row = session.get(LetterDetails, doc.id)
    details = Details.of(row).as_dict()
    if exempt:  # only what is kept in clear, whatever the row holds
        details = {k: (v if k in ("tanggal", "sifat") else None) for k, v in details.items()}
    copies = {drive_id: (verified_at, size) for drive_id, verified_at, size in session.execute(
        select(Copy.drive_id, Copy.verified_at, Copy.size).where(Copy.document_id == doc.id))}
    drives = [{"drive": d.name, "verified_copy": d.id in copies,
               "verified_at": iso(copies[d.id][0]) if d.id in copies else None,
               "drive_last_verified_at": iso(d.last_verified_at)}
              for d in session.scalars(select(Drive).order_by(Drive.name))]
    duplicates = [{"detected_at": iso(d.detected_at), "seen_at": iso(d.seen_at), "seen_by": d.seen_by}
                  for d in session.scalars(select(Duplicate).where(Duplicate.document_id == doc.id).order_by(Duplicate.id))]
    events = [_event(e, exempt) for e in session.scalars(
        select(AuditEvent).where(AuditEvent.agenda == doc.agenda).order_by(AuditEvent.seq).limit(MAX_EVENTS))]
    return {
        "id": doc.id, "agenda": doc.agenda, "category": doc.category, "exempt": exempt,
        "received_at": iso(doc.received_at), "received_date": doc.received_at.astimezone(tz).date().isoformat(),
        "name": None if exempt else doc.original_name,
        "state": doc.state.value,
        "archive_path": doc.archive_path,
        "detected_type": doc.detected_type,
        # What the archive holds: the .age file of an exempt letter, the scan itself otherwise.
        "size": doc.ciphertext_size if exempt and doc.ciphertext_size is not None else doc.size,
        "sha256": (doc.ciphertext_sha256 or None) if exempt else doc.sha256,
        "details": details,
        "details_updated_at": iso(row.updated_at) if row is not None else None,
        "details_updated_by": row.updated_by if row is not None else None,
        "copies": [d for d in drives if d["verified_copy"]],
        "drives": drives,
        "duplicates": duplicates,
        "events": events,
    }

