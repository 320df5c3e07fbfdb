"""Filing and the register's search index (letters/index.py): a lone batch is indexed in its
own transaction; a burst's batches leave it for the daemon to catch up once nothing is due,
and searches find their documents all the while."""

from __future__ import annotations

import os
from pathlib import Path

from naskahd.filing import Filer
from naskahd.letters import index, search
from naskahd.register import open_register

from conftest import Daemon, wait_until, write_config
from test_reconcile import check_invariants, ready, setup


def test_a_batch_left_out_of_the_index_is_found_and_caught_up_later(tmp_path: Path) -> None:
    cfg, contents = setup(tmp_path, 5)
    sessions = open_register(cfg.database_url)
    filer = Filer(cfg, sessions)
    try:
        filer.finish(filer.begin(ready(cfg, ["masuk/s0.pdf", "masuk/s1.pdf"])))  # at once (the default)
        with sessions() as s:
            assert index.watermark(s) == 2
        filer.finish(filer.begin(ready(cfg, ["masuk/s2.pdf", "masuk/s3.pdf", "masuk/s4.pdf"])), index_now=False)
        with sessions() as s:
            assert index.watermark(s) == 2  # left for later, and still found (the scan above the index)
            assert len(search.search(s, search.Query(text="s3")).items) == 1
        assert filer.catch_up_index(2) == 2 and filer.catch_up_index(2) == 1 and filer.catch_up_index(2) == 0
        with sessions() as s:
            assert index.watermark(s) == 5
            assert len(search.search(s, search.Query(text="s3")).items) == 1
    finally:
        filer.close()
    check_invariants(cfg, contents)


def test_the_daemon_catches_up_the_index_after_a_burst(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "naskahd", settle=0.3, content_check=False)
    d = Daemon(cfg.parent, cfg).start()
    try:
        for i in range(300):
            (d.drop / "masuk" / f"surat {i}.pdf").write_bytes(os.urandom(2000))
        d.wait_event("document.registered", count=300, timeout=120)
        url = f"sqlite:///{d.state / 'register.sqlite3'}"

        def indexed() -> bool:
            with open_register(url, create=False)() as s:
                return index.watermark(s) == 300

        wait_until(indexed, 30, "the burst's documents in the index", d)
        with open_register(url, create=False)() as s:
            assert len(search.search(s, search.Query(text="surat")).items) > 0
        (d.drop / "masuk" / "lone.pdf").write_bytes(os.urandom(2000))  # a lone file: indexed with its row
        d.wait_event("document.registered", count=301, timeout=60)
        with open_register(url, create=False)() as s:
            assert index.watermark(s) == 301
    finally:
        assert d.stop() == 0


def test_the_index_catch_up_gives_the_loop_back_within_its_turn(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """However large the backlog, one turn of the loop indexes for at most INDEX_TURN_SECONDS,
    so the heartbeat and the watchdog's ping come between (review: a backlog of tens of
    thousands could outlast WatchdogSec). The loop's own logic, with a stand-in filer."""
    import queue
    import time
    from types import SimpleNamespace

    from naskahd import service

    calls: list[float] = []

    def catch_up_index(limit: int) -> int:
        calls.append(time.monotonic())
        if len(calls) > 100:
            raise AssertionError("the catch-up never gave the loop back")
        time.sleep(0.02)
        return limit  # always a full chunk: more to come

    monkeypatch.setattr(service, "INDEX_TURN_SECONDS", 0.2, raising=False)
    d = object.__new__(service.Daemon)
    d._index_behind, d._index_retry, d.events = True, 0.0, queue.SimpleQueue()
    d.settler = SimpleNamespace(next_due=lambda: None)
    d.filer = SimpleNamespace(catch_up_index=catch_up_index)
    d._stop_pending = lambda: False
    d._archive_gone = lambda fresh=True: False
    d.log = SimpleNamespace(warning=lambda *a, **k: None)
    d.config = SimpleNamespace(withheld=lambda text: text)
    d._index_idle()
    assert 1 <= len(calls) <= 20, len(calls)
    assert d._index_behind, "the rest is left for the next turn"
