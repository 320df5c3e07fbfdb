"""Planning from a real register: what a drive lacks, by query alone; the backup-age problem."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from naskahd import config as config_mod
from naskahd.drives import describe, plan
from naskahd.register import Copy, Document, DocumentState, Drive, open_register

from conftest import write_config


def _doc(i: int, state: DocumentState = DocumentState.FILED, exempt: bool = False) -> Document:
    return Document(agenda=f"{i:04d}/{'D' if exempt else 'M'}/2026", category="exempt" if exempt else "inbound", year=2026, number=i,
                    source_relpath=b"", archive_path=f"x/{i}", size=10 + i, sha256=f"{i:064x}",
                    ciphertext_size=100 + i if exempt else None, ciphertext_sha256=f"{i + 1000:064x}" if exempt else None,
                    received_at=dt.datetime.now(dt.UTC), state=state)


def _w(i: int, path: str) -> plan.Wanted:
    return plan.Wanted(i, f"{i:04d}/M/2026", "inbound", path, 1, "0" * 64)


def test_missing_and_pending_come_from_the_register_per_drive(tmp_path: Path) -> None:
    sessions = open_register(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    now = dt.datetime.now(dt.UTC)
    with sessions.begin() as s:
        docs = [_doc(1), _doc(2), _doc(3, DocumentState.STAGED), _doc(4, exempt=True), _doc(5, DocumentState.SOURCE_STUCK)]
        s.add_all(docs)
        a = Drive(name="a", uuid="u-a", token_id="t", registered_at=now)
        b = Drive(name="b", uuid="u-b", token_id="t2", registered_at=now)
        s.add_all([a, b])
        s.flush()
        s.add(Copy(drive_id=a.id, document_id=docs[0].id, drive_path="x/1", size=11, sha256="0" * 64, verified_at=now))
    with sessions() as s:
        lacking = plan.missing(s, a.id)
        assert [w.agenda for w in lacking] == ["0002/M/2026", "0004/D/2026", "0005/M/2026"]  # staged: not yet final
        exempt = lacking[1]
        assert (exempt.size, exempt.sha256) == (104, f"{1004:064x}")  # the .age file's, never the plaintext's
        assert plan.pending(s, a.id) == (3, 12 + 104 + 15)
        assert plan.pending(s, b.id)[0] == 4
        assert plan.taken_paths(s, a.id, [_w(1, "x/1")]) == {"x/1"}
        assert plan.taken_paths(s, a.id, [_w(2, "x/2")]) == set()
        big_sync = plan.PER_NAME_QUERIES
        try:  # a big sync fetches whole folders instead: the same answer
            plan.PER_NAME_QUERIES = 0
            assert plan.taken_paths(s, a.id, [_w(1, "x/1")]) == {"x/1"} and plan.taken_paths(s, a.id, [_w(1, "y/1")]) == set()
        finally:
            plan.PER_NAME_QUERIES = big_sync
    # Holes below the highest copy are found too: a row still staged at the last sync, a
    # file that failed while later ones were copied.
    with sessions.begin() as s:
        s.add_all(Copy(drive_id=a.id, document_id=docs[i].id, drive_path=f"x/{i + 1}", size=1, sha256="0" * 64, verified_at=now) for i in (1, 3, 4))
        s.add(Copy(drive_id=b.id, document_id=docs[1].id, drive_path="x/2", size=1, sha256="0" * 64, verified_at=now))
    with sessions() as s:
        assert plan.missing(s, a.id) == [] and plan.pending(s, a.id) == (0, 0)
        assert [w.agenda for w in plan.missing(s, b.id)] == ["0001/M/2026", "0004/D/2026", "0005/M/2026"]
    with sessions.begin() as s:
        s.get(Document, docs[2].id).state = DocumentState.FILED
    with sessions() as s:
        assert [w.agenda for w in plan.missing(s, a.id)] == ["0003/M/2026"]
        assert plan.pending(s, a.id) == (1, 13)


def test_status_reports_a_backup_older_than_max_age_days(tmp_path: Path) -> None:
    cfg = config_mod.load(str(write_config(tmp_path / "n", extra="[backup]\nmax_age_days = 3\n")))
    assert cfg.backup_max_age_days == 3
    now = dt.datetime(2026, 12, 10, tzinfo=dt.UTC)
    listed = [{"last_verified": "2026-12-05T00:00:00+00:00", "registered_at": "2026-11-01T00:00:00+00:00"},
              {"last_verified": None, "registered_at": "2026-11-01T00:00:00+00:00"}]
    assert describe.age_problem(cfg, listed, now) == "the backup drive has not been updated for 5 days: plug in a registered drive and let it sync"
    listed[0]["last_verified"] = "2026-12-08T00:00:00+00:00"
    assert describe.age_problem(cfg, listed, now) is None
    assert describe.age_problem(cfg, [], now) is None  # no drive registered: no backup problem (yet)
    never = [{"last_verified": None, "registered_at": "2026-12-01T00:00:00+00:00"}]
    assert "9 days" in describe.age_problem(cfg, never, now)
