"""The audit trail: every event that matters, hash-chained, in the transaction of its change.

``record(session, event, **details)`` appends one row inside the caller's transaction, so
the row commits (or rolls back) with the change it records. Each row holds the SHA-256 of
its canonical content, and that content includes its sequence number and the previous
row's hash: a changed, inserted or deleted row breaks the chain from there on, which
``verify_chain`` finds and names. What the chain does and does not protect against:
docs/architecture.md ("The audit trail").

Details are scalars only, and never a file name or a drop path: an exempt letter's name
must not enter this table, so callers pass agenda numbers and categories, and keys that
would carry a name are refused outright.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from naskahd.i18n import _
from naskahd.register.records import AuditEvent, AuditHead

GENESIS = "0" * 64
HEAD_ID = 1
DAEMON = "daemon"


def cli_actor() -> str:
    """Who ran a command that changed the register: ``cli:<login name>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        import os

        return f"cli:uid={os.getuid()}"

# Keys that would carry a file name or a path: never accepted (an exempt letter's name
# must not reach the audit table, and ordinary names are in the register already).
FORBIDDEN_KEYS = frozenset({"name", "path", "relpath", "original_name", "source", "source_relpath", "moved_to", "filename"})

# The events naskahd records (stable names, as in the logs).
EVENTS = (
    "daemon.started", "daemon.stopped", "config.reloaded",
    "document.filed", "document.duplicate", "document.review", "document.encrypted",
    "drive.synced", "drive.verified", "drive.refused",
    "report.generated", "report.reviewed", "report.validated",
    "user.added", "user.password_changed", "user.removed",
    "web.login", "web.login_failed", "web.logout",
    "letter.annotated", "review.moved", "duplicate.seen",
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_details(details: dict[str, Any]) -> str:
    for key, value in details.items():
        if key in FORBIDDEN_KEYS:
            raise ValueError(f"audit details must not carry {key!r} (no names or paths in the audit table)")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise TypeError(f"audit detail {key!r} must be a scalar, not {type(value).__name__}")
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def subject_of(details: dict[str, Any]) -> str | None:
    """The agenda number an event is about, for ``AuditEvent.agenda`` (an index, not hashed)."""
    value = details.get("agenda") or details.get("duplicate_of")
    return value if isinstance(value, str) else None


def row_hash(seq: int, at: dt.datetime, event: str, actor: str, details: str, prev_sha256: str) -> str:
    """SHA-256 of a row's canonical content: a JSON array of its fields, in a fixed order."""
    return _content_hash(seq, _iso(at), event, actor, json.loads(details), prev_sha256)


def _content_hash(seq: int, at_iso: str, event: str, actor: str, details: dict[str, Any], prev_sha256: str) -> str:
    """``row_hash`` of a row being appended, from the details it was given (what its stored
    text reads back as: scalars only, ``canonical_details``), without parsing that text."""
    content = json.dumps([seq, at_iso, event, actor, details, prev_sha256],
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def record(session: Session, event: str, *, actor: str = DAEMON, at: dt.datetime | None = None, **details: Any) -> Head:
    """Append ``event`` to the chain inside the caller's transaction (the caller commits).
    Returns its place in the chain (``seq``, ``sha256``)."""
    return record_many(session, [(event, details)], actor=actor, at=at)[0]


def record_many(session: Session, items: Sequence[tuple[str, dict[str, Any]]], *, actor: str = DAEMON,
                at: dt.datetime | None = None) -> list[Head]:
    """Append several events (``(event, details)``) in order, in a few statements for the lot."""
    given, texts = [], []
    for event, details in items:
        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}")
        given.append({k: v for k, v in details.items() if v is not None})
        texts.append(canonical_details(given[-1]))
    if not items:
        return []
    when = at or utcnow()
    when_iso = _iso(when)
    # Core statements on the tables (here and below): no ORM objects to track and flush, no
    # session to synchronise. A batch's rows cost a fraction of the ORM's CPU on the
    # daemon's serial stage (docs/benchmarks.md, "Filing after session 5's merges").
    head = AuditHead.__table__
    # Move the head on first: this write takes the lock, so the previous row read below is
    # the last one for as long as this transaction lives.
    moved = session.execute(
        update(head).where(head.c.id == HEAD_ID).values(seq=head.c.seq + len(items)).returning(head.c.seq, head.c.sha256)
    ).first()
    if moved is None:  # the very first events of this register
        session.execute(insert(head).values(id=HEAD_ID, seq=len(items), sha256=GENESIS))
        last_seq, prev = len(items), GENESIS
    else:
        last_seq, prev = moved
    rows = []
    for seq, (event, _details), details, text in zip(range(last_seq - len(items) + 1, last_seq + 1), items, given, texts,
                                                     strict=True):
        digest = _content_hash(seq, when_iso, event, actor, details, prev)
        rows.append({"seq": seq, "at": when, "event": event, "actor": actor, "details": text,
                     "prev_sha256": prev, "sha256": digest, "agenda": subject_of(details)})
        prev = digest
    session.execute(insert(AuditEvent.__table__), rows)  # one executemany; no RETURNING: the keys are ours
    session.execute(update(head).where(head.c.id == HEAD_ID).values(sha256=prev))
    return [Head(row["seq"], row["sha256"]) for row in rows]


def record_now(sessions: sessionmaker[Session], event: str, **details: Any) -> Head:
    """``record`` in a transaction of its own (daemon started or stopped)."""
    with sessions.begin() as session:
        return record(session, event, **details)


# -- the events of the filing pipeline, built from register rows (never from file names) ----
def documents_filed(session: Session, docs: Iterable[Any]) -> list[Head]:
    """``document.filed`` for each new row (and ``document.encrypted`` for exempt ones)."""
    items: list[tuple[str, dict[str, Any]]] = []
    for d in docs:
        exempt = d.ciphertext_sha256 is not None
        # An exempt letter's plaintext hash stays out: the ciphertext's is what is stored.
        items.append(("document.filed", {"agenda": d.agenda, "category": d.category, "size": d.size,
                                         "sha256": None if exempt else d.sha256}))
        if exempt:
            items.append(("document.encrypted", {"agenda": d.agenda, "ciphertext_sha256": d.ciphertext_sha256,
                                                 "ciphertext_size": d.ciphertext_size}))
    return record_many(session, items)


def duplicates_seen(session: Session, pairs: Iterable[tuple[Any, str]]) -> list[Head]:
    """``document.duplicate`` for each (registered row it duplicates, category it came in as)."""
    return record_many(session, [("document.duplicate", {"duplicate_of": d.agenda, "category": category})
                                 for d, category in pairs])


@dataclass(frozen=True)
class Head:
    seq: int
    sha256: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.sha256}"


def head(session: Session) -> Head:
    """The chain's latest row (what an anchor keeps), or ``0:GENESIS`` for an empty chain."""
    row = session.execute(select(AuditEvent.seq, AuditEvent.sha256).order_by(AuditEvent.seq.desc()).limit(1)).first()
    return Head(0, GENESIS) if row is None else Head(row[0], row[1])


@dataclass(frozen=True)
class ChainCheck:
    rows: int
    head: Head
    broken_seq: int | None = None  # the first broken row's sequence number
    problem: str | None = None  # what is wrong with it, for a person
    kind: str | None = None  # "changed", "missing", "inserted", "head", "anchor"

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def _rows(session: Session) -> Iterator[AuditEvent]:
    yield from session.scalars(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=2000))


def verify_chain(session: Session, anchors: list[Head] | None = None) -> ChainCheck:
    """Walk the whole chain; stop at the first row that does not hold.

    ``anchors`` are heads kept elsewhere (printed on validated reports, copied to drives):
    each must still be in the chain with the same hash, which detects a chain rewritten
    from scratch or cut short after the anchor was taken.
    """
    expected_prev, expected_seq, count = GENESIS, 1, 0
    last = Head(0, GENESIS)
    by_seq: dict[int, str] = {}
    wanted = {a.seq for a in anchors or []}

    def broken(seq: int, kind: str, problem: str) -> ChainCheck:
        return ChainCheck(count, last, seq, problem, kind)

    for row in _rows(session):
        if row.seq > expected_seq:
            return broken(expected_seq, "missing", _("audit row {seq} is missing: the chain jumps from row {before} to row {after}")
                          .format(seq=expected_seq, before=expected_seq - 1, after=row.seq))
        if row.seq < expected_seq:
            return broken(row.seq, "inserted", _("audit row {seq} is out of order").format(seq=row.seq))
        if row.prev_sha256 != expected_prev:
            return broken(row.seq, "inserted", _("audit row {seq} does not follow row {before}: it was inserted, "
                                                 "or the row before it was replaced").format(seq=row.seq, before=row.seq - 1))
        try:
            actual = row_hash(row.seq, row.at, row.event, row.actor, row.details, row.prev_sha256)
        except (ValueError, TypeError):  # details that are no longer JSON
            actual = ""
        if actual != row.sha256:
            return broken(row.seq, "changed", _("audit row {seq} was changed: its content no longer matches its hash")
                          .format(seq=row.seq))
        if row.seq in wanted:
            by_seq[row.seq] = row.sha256
        count += 1
        last = Head(row.seq, row.sha256)
        expected_prev, expected_seq = row.sha256, row.seq + 1
    stored = session.get(AuditHead, HEAD_ID)
    if stored is not None and (stored.seq, stored.sha256) != (last.seq, last.sha256):
        if stored.seq > last.seq:
            return broken(last.seq + 1, "missing", _("audit row {seq} is missing: the chain ends at row {last}, its head says {head}")
                          .format(seq=last.seq + 1, last=last.seq, head=stored.seq))
        if stored.seq < last.seq:
            return broken(stored.seq + 1, "inserted", _("audit row {seq} was appended outside naskahd: the chain's head says {head}")
                          .format(seq=stored.seq + 1, head=stored.seq))
        return broken(last.seq, "changed", _("audit row {seq} was replaced: the chain's head holds another hash").format(seq=last.seq))
    for a in sorted(anchors or [], key=lambda a: a.seq):
        if a.seq and by_seq.get(a.seq) != a.sha256:
            return broken(a.seq, "anchor", _("audit row {seq} differs from its anchor {anchor}: the chain was rewritten or cut short")
                          .format(seq=a.seq, anchor=str(a)))
    return ChainCheck(count, last)


def events(session: Session, since: dt.datetime | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.seq)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    return list(session.scalars(query))


def as_dict(row: AuditEvent) -> dict[str, Any]:
    return {"seq": row.seq, "at": _iso(row.at), "event": row.event, "actor": row.actor,
            "details": json.loads(row.details), "prev_sha256": row.prev_sha256, "sha256": row.sha256}


# -- anchoring -------------------------------------------------------------------------------
ANCHOR_FILE = "naskahd-audit-anchors.txt"


def anchor_line(h: Head, at: dt.datetime | None = None) -> str:
    return f"{_iso(at or utcnow())} {h}\n"


def write_anchor(session: Session, folder: Any) -> Head:
    """Append the chain's current head to ``folder/naskahd-audit-anchors.txt`` (a backup
    drive's root; the drive sync calls this after a verified sync) and fsync it.

    The file only grows; each line is ``<UTC time> <seq>:<sha256>``. ``read_anchors`` reads
    it back for ``verify_chain(anchors=...)``.
    """
    import os
    from pathlib import Path

    h = head(session)
    path = Path(folder) / ANCHOR_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, anchor_line(h).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return h


def parse_head(text: str) -> Head:
    seq, _, sha = text.strip().partition(":")
    if not seq.isdigit() or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"not an audit head (SEQ:SHA256): {text!r}")
    return Head(int(seq), sha)


def read_anchors(path: Any) -> list[Head]:
    from pathlib import Path

    heads = []
    for line in Path(path).read_text(encoding="ascii").splitlines():
        parts = line.split()
        if parts:
            heads.append(parse_head(parts[-1]))
    return heads
