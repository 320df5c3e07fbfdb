"""The backup figures of a report (issue 20's ``report/data.py`` looks this module up).

Everything comes from the register: the drives, each document's verified copies (the
``copies`` table), and the syncs and verification runs of the period as the audit trail
recorded them (``drive.synced``, ``drive.verified``, with their figures). Nothing walks a
drive: a report is made whether or not a drive is plugged in.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from naskahd.register import AuditEvent, Copy, Drive


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat()


def _events(session: Session, name: str, lo: dt.datetime, hi: dt.datetime) -> list[tuple[dt.datetime, dict[str, Any]]]:
    query = (select(AuditEvent.at, AuditEvent.details).where(AuditEvent.event == name, AuditEvent.at >= lo, AuditEvent.at < hi)
             .order_by(AuditEvent.seq))
    return [(at, json.loads(details)) for at, details in session.execute(query)]


def backup_facts(session: Session, lo: dt.datetime, hi: dt.datetime, document_ids: list[int]) -> dict[str, Any]:
    """The shape of ``report.data.NO_DRIVES``, filled from the register."""
    drives = list(session.scalars(select(Drive).order_by(Drive.name)))
    copies: dict[int, list[dict[str, Any]]] = {}
    wanted = set(document_ids)
    if drives and wanted:
        query = select(Copy.document_id, Drive.name, Copy.verified_at).join(Drive, Drive.id == Copy.drive_id)
        for doc_id, drive, verified_at in session.execute(query.order_by(Drive.name)):
            if doc_id in wanted:
                copies.setdefault(doc_id, []).append({"drive": drive, "verified_at": _iso(verified_at)})
    syncs = [
        {"drive": d.get("drive"), "at": _iso(at), "copied": d.get("copied", 0), "verified": d.get("copied", 0),
         "ok": not d.get("failed") and not d.get("missing")}
        for at, d in _events(session, "drive.synced", lo, hi)
    ]
    verifications = [
        {"drive": d.get("drive"), "at": _iso(at), "checked": d.get("checked", 0), "failed": d.get("failed", 0),
         "ok": bool(d.get("ok"))}
        for at, d in _events(session, "drive.verified", lo, hi)
    ]
    return {
        "available": bool(drives),
        # No "last_seen_at": a report's data would change with every sync, and a reviewed report
        # would always be out of date. What a sync did is in "syncs", by period.
        "drives": [{"label": d.name, "registered_at": _iso(d.registered_at), "last_seen_at": None} for d in drives],
        "syncs": syncs,
        "verifications": verifications,
        "copies": copies,
    }
