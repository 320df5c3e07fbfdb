"""Generated reports in the register: generate, render again, review, validate, list.

Functions over a session factory and the configuration, so that a web page can call
them as ``naskahd report`` does. Each report keeps the snapshot it was made from, so it
renders again to the same bytes (with the sign-offs given since in its signature
blocks); it is out of date when the register's data for its period no longer gives the
same snapshot. Each step is recorded in the audit trail in the transaction that makes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from naskahd import audit
from naskahd.errors import NaskahdError, UsageError
from naskahd.i18n import _
from naskahd.register.records import Report
from naskahd.report import data, unfinished
from naskahd.report.period import Period, from_label

FORMATS = ("pdf", "csv", "json")
MAX_NAME = 120


class ReportError(NaskahdError):
    """A report cannot be reviewed, validated or found."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat()


def period_of(row: Report) -> Period:
    return from_label(row.kind, row.period_start, row.period_end)


def snapshot_of(row: Report) -> dict[str, Any]:
    return data.unpack(row.snapshot)


def meta(row: Report, outdated: bool) -> dict[str, Any]:
    return {
        "id": row.id, "period": period_of(row).label, "kind": row.kind, "format": row.format, "lang": row.lang,
        "created_at": _iso(row.created_at), "data_sha256": row.data_sha256,
        "audit_head": f"{row.audit_seq}:{row.audit_sha256}",
        "reviewed_by": row.reviewed_by, "reviewed_at": _iso(row.reviewed_at), "review_note": row.review_note,
        "validated_by": row.validated_by, "validated_at": _iso(row.validated_at), "validation_note": row.validation_note,
        "anchor": row.anchor, "outdated": outdated,
    }


def render(row: Report, outdated: bool = False, snapshot: dict[str, Any] | None = None) -> bytes:
    """The file of ``row``: the same bytes for the same snapshot, sign-offs and flag."""
    snapshot, m = snapshot or snapshot_of(row), meta(row, outdated)
    if row.format == "pdf":
        from naskahd.report import pdf

        return pdf.render(snapshot, m, row.lang)
    from naskahd.report import tabular

    return (tabular.render_csv if row.format == "csv" else tabular.render_json)(snapshot, m, row.lang)


def _collect(session: Session, cfg: Any, period: Period) -> dict[str, Any]:
    return data.collect(session, cfg.office_name, cfg.timezone, period, office_place=cfg.office_place)


def generate(sessions: sessionmaker[Session], cfg: Any, period: Period, fmt: str, lang: str,
             now: dt.datetime | None = None, deliver: Callable[[Report, bytes], object] | None = None,
             actor: str | None = None) -> tuple[Report, bytes]:
    """Make, render and register a report. The register's write lock is held only for two
    short transactions, never while the file is rendered (the daemon keeps filing).
    ``deliver(row, content)`` (writing the file) runs before the report is registered: if
    it fails, the report is not registered. ``actor``: who asked (the web page's user), by
    default the command line's login name."""
    if fmt not in FORMATS:
        raise UsageError(_("unknown report format {value!r}: use pdf, csv or json").format(value=fmt))
    with sessions() as s:
        snapshot = _collect(s, cfg, period)
        head = audit.head(s)
    blob, digest = data.pack(snapshot)
    with unfinished.making(sessions):  # until its hash is recorded (report/unfinished.py)
        with sessions.begin() as s:
            row = Report(kind=period.kind, period_start=period.start.isoformat(), period_end=period.end.isoformat(),
                         format=fmt, lang=lang, sha256="", data_sha256=digest, snapshot=blob,
                         audit_seq=head.seq, audit_sha256=head.sha256, created_at=now or _now())
            s.add(row)
        try:
            content = render(row, snapshot=snapshot)
            row.sha256 = hashlib.sha256(content).hexdigest()
            if deliver is not None:
                deliver(row, content)
        except BaseException:
            with sessions.begin() as s:
                s.delete(s.get(Report, row.id))
            raise
        _registered(sessions, row, len(snapshot["documents"]), actor=actor)
    return row, content


def _registered(sessions: sessionmaker[Session], row: Report, documents: int, actor: str | None = None,
                **more: Any) -> None:
    """Record the hash of ``row``'s file: from now on it is a registered report."""
    with sessions.begin() as s:
        stored = s.get(Report, row.id)
        assert stored is not None
        stored.sha256 = row.sha256
        audit.record(s, "report.generated", actor=actor or audit.cli_actor(), report_id=row.id, period=period_of(row).label,
                     format=row.format, sha256=row.sha256, data_sha256=row.data_sha256, documents=documents, **more)


def finish_unfinished(sessions: sessionmaker[Session]) -> list[int]:
    """Finish the reports whose command was stopped before it recorded their hash (killed,
    a power cut): rendered again from their snapshot, the hash recorded, ``report.generated``
    in the audit trail (``finished_later``). Their numbers are never given again. Nothing is
    done while another command is making a report (report/unfinished.py). Returns their ids."""
    done: list[int] = []
    with unfinished.alone(sessions) as alone:
        if not alone:
            return done
        with sessions() as s:
            rows = list(s.scalars(select(Report).where(Report.sha256 == "").order_by(Report.id)))
            s.expunge_all()
        for row in rows:
            snapshot = snapshot_of(row)
            row.sha256 = hashlib.sha256(render(row, snapshot=snapshot)).hexdigest()
            _registered(sessions, row, len(snapshot["documents"]), finished_later=True)
            done.append(row.id)
    return done


def get(session: Session, report_id: int) -> Report:
    row = session.get(Report, report_id)
    if row is None or not row.sha256:
        raise ReportError(_("there is no report {id}; 'naskahd report list' shows them").format(id=report_id))
    return row


def is_outdated(session: Session, cfg: Any, row: Report, cache: dict[tuple[str, str, str], str] | None = None) -> bool:
    key = (row.kind, row.period_start, row.period_end)
    if cache is None or key not in cache:
        current = data.fingerprint(_collect(session, cfg, period_of(row)))
        if cache is None:
            return current != row.data_sha256
        cache[key] = current
    return cache[key] != row.data_sha256


def listing(sessions: sessionmaker[Session], cfg: Any) -> list[dict[str, Any]]:
    cache: dict[tuple[str, str, str], str] = {}
    with sessions() as s:
        rows = list(s.scalars(select(Report).where(Report.sha256 != "").order_by(Report.id)))
        return [{**meta(r, is_outdated(s, cfg, r, cache)), "sha256": r.sha256} for r in rows]


def _name(by: str) -> str:
    name = " ".join(by.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise UsageError(_("--by must be the signer's name (1 to {n} printable characters)").format(n=MAX_NAME))
    return name


def _refuse_if_outdated(s: Session, cfg: Any, row: Report) -> None:
    """A sign-off is only ever given to a report of the register as it is now."""
    if is_outdated(s, cfg, row):
        raise ReportError(_("report {id} is out of date: the register has changed since it was made; "
                            "generate it again and review the new one").format(id=row.id))


def review(sessions: sessionmaker[Session], cfg: Any, report_id: int, by: str, note: str | None = None,
           now: dt.datetime | None = None) -> Report:
    """Step 9: the head of the cryptography section reviewed the report."""
    name = _name(by)
    with sessions.begin() as s:
        row = get(s, report_id)
        if row.reviewed_by:
            raise ReportError(_("report {id} was already reviewed by {by}").format(id=report_id, by=row.reviewed_by))
        _refuse_if_outdated(s, cfg, row)
        row.reviewed_by, row.reviewed_at, row.review_note = name, now or _now(), note
        audit.record(s, "report.reviewed", actor=name, report_id=report_id, sha256=row.sha256, note=note)
        return row


def validate(sessions: sessionmaker[Session], cfg: Any, report_id: int, by: str, note: str | None = None,
             now: dt.datetime | None = None) -> Report:
    """Step 10: the head of the informatics division validated the reviewed report."""
    name = _name(by)
    with sessions.begin() as s:
        row = get(s, report_id)
        if not row.reviewed_by:
            raise ReportError(_("report {id} has not been reviewed yet: the head of section reviews it first "
                                "('naskahd report review {id} --by NAME')").format(id=report_id))
        if row.validated_by:
            raise ReportError(_("report {id} was already validated by {by}").format(id=report_id, by=row.validated_by))
        _refuse_if_outdated(s, cfg, row)
        row.validated_by, row.validated_at, row.validation_note = name, now or _now(), note
        event = audit.record(s, "report.validated", actor=name, report_id=report_id, sha256=row.sha256, note=note)
        row.anchor = f"{event.seq}:{event.sha256}"
        return row


# Reviewed reports older than this are not re-checked by `status` (a year of months).
STATUS_HORIZON = dt.timedelta(days=400)


def outdated_reviewed(sessions: sessionmaker[Session], cfg: Any) -> list[int]:
    """Ids of reviewed reports whose data has changed since (for ``status``): only the
    newest report of each period and format is looked at, and only recent ones."""
    since = _now() - STATUS_HORIZON
    cache: dict[tuple[str, str, str], str] = {}
    newest: dict[tuple[str, str, str, str], Report] = {}
    with sessions() as s:
        for r in s.scalars(select(Report).where(Report.sha256 != "", Report.created_at >= since).order_by(Report.id)):
            newest[(r.kind, r.period_start, r.period_end, r.format)] = r
        return [r.id for r in newest.values() if r.reviewed_by and is_outdated(s, cfg, r, cache)]
