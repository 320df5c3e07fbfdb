"""Recording what a sync verified: the drive's manifest lines, then the register's ``copies``.

Per verified batch, in this order: the batch's manifest lines are appended to the drive's
manifest and made durable (a copy in the register is always in the drive's manifest),
then its ``copies`` rows are inserted in one short write transaction (filing is never held
back for long). ``Recorder`` does this on its own thread, in batch order, so that waiting
for the drive's fsync and the register's commit overlaps the copying of the next batches.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from naskahd.drives import layout
from naskahd.drives.copy import DriveRoot
from naskahd.drives.plan import Item
from naskahd.register import Copy, Document, Drive

Verified = Sequence[tuple[Item, int, str]]  # item, size, sha256 read back


def record(sessions: sessionmaker[Session], root: DriveRoot, drive: Drive, verified: Verified,
           encode: Callable[[Any], dict[str, Any]]) -> None:
    """The batch's manifest lines (made durable first), then its ``copies`` rows in one
    short transaction."""
    now = dt.datetime.now(dt.UTC)
    stamp = now.isoformat()
    cut = len(layout.ROOT) + 1
    table = Document.__table__
    ids = [i.wanted.document_id for i, _s, _h in verified]
    lo, hi = min(ids), max(ids)
    # A batch is in register order, usually a run of ids: a range of the primary key is
    # cheaper than an IN list of a thousand parameters.
    where = table.c.id.between(lo, hi) if hi - lo < 2 * len(ids) else table.c.id.in_(ids)
    with sessions() as s:
        rows = {r[0]: r for r in s.connection().execute(select(table).where(where)).all()}
    line = layout.manifest_line
    paths = [i.drive_path[cut:] for i, _s, _h in verified]
    lines = b"".join(line({
        "kind": "document", "agenda": i.wanted.agenda, "category": i.wanted.category,
        "archive_path": i.wanted.archive_path, "drive_path": path,
        "size": size, "sha256": sha, "verified_at": stamp,
        "row": encode(row) if (row := rows.get(i.wanted.document_id)) is not None else None,
    }) for (i, size, sha), path in zip(verified, paths))
    root.append(layout.MANIFEST, lines)
    with sessions.begin() as s:  # one short write transaction per batch (Core: no ORM objects to build)
        s.execute(insert(Copy.__table__), [
            {"drive_id": drive.id, "document_id": i.wanted.document_id, "drive_path": path, "size": size,
             "sha256": sha, "verified_at": now} for (i, size, sha), path in zip(verified, paths)])


class Recorder:
    """Records verified batches on the ``naskahd-record`` thread, in the order given.
    ``add`` returns the number of files whose recording has finished since the last call
    (raising the recording's error, if it failed); ``finish`` waits for the rest."""

    def __init__(self, sessions: sessionmaker[Session], root: DriveRoot, drive: Drive) -> None:
        self.sessions, self.root, self.drive = sessions, root, drive
        self.encode = layout.row_encoder(Document.__table__)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="naskahd-record")
        self.pending: deque[tuple[Future[None], int]] = deque()

    def add(self, verified: Verified) -> int:
        self.pending.append((self.pool.submit(record, self.sessions, self.root, self.drive, verified, self.encode),
                             len(verified)))
        return self._done(wait=False)

    def finish(self) -> int:
        return self._done(wait=True)

    def _done(self, *, wait: bool) -> int:
        n = 0
        while self.pending and (wait or self.pending[0][0].done()):
            future, count = self.pending.popleft()
            future.result()
            n += count
        return n

    def close(self) -> None:
        """Wait for what was handed over (a recording under way is finished, never cut)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
