"""An inotify queue overflow (issue 22): watchdog's report of it starts a full rescan of
the drop folder, and `status` says events were lost while that rescan runs, then keeps
the count and the last time. The real overflow, under the real daemon, is forced in
tests/test_daemon.py::test_10000_files_at_once_with_an_overflowing_inotify_queue."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from naskahd import config, i18n, watch
from naskahd.cli import status_cmd
from naskahd.service import Daemon

from conftest import write_config

# watchdog 7's words for one overflow, once per logger (watchdog/observers/inotify_c.py, inotify.py)
LOST = ("watchdog.observers.inotify_c", "Inotify queue overflowed; filesystem events were lost")
RECONCILING = ("watchdog.observers.inotify", "Inotify queue overflowed; reconciling recursive watches below '/d'")


def report(watcher: watch.Watcher, logger: str, message: str) -> None:
    logging.getLogger(logger).warning(message)


def test_an_overflow_is_counted_once_and_rescanned_once(tmp_path: Path) -> None:
    cfg = config.load(str(write_config(tmp_path / "t")))
    d = Daemon(cfg)
    watcher = watch.Watcher(cfg, d.events, d.overflows)
    watcher.start()
    try:
        report(watcher, *LOST)
        report(watcher, *RECONCILING)  # the same overflow, in watchdog's other words
        assert d.overflows.snapshot()["count"] == 1 and d.overflows.snapshot()["rescanning"]
        queued = []
        while not d.events.empty():
            queued.append(d.events.get_nowait())
        assert queued == [watch.Scan(str(cfg.drop), watch.OVERFLOW)]
        report(watcher, *LOST)  # a second overflow: its own logger again
        assert d.overflows.snapshot()["count"] == 2
    finally:
        watcher.stop()


def test_status_says_events_were_lost_while_the_rescan_runs_and_not_after(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The heartbeats written during the rescan carry ``rescanning``; the one after it
    does not, and holds the count, the times and what the rescan found."""
    cfg = config.load(str(write_config(tmp_path / "t")))
    for i in range(3):
        (cfg.drop / "masuk" / f"s{i}.pdf").write_bytes(b"%d" % i)
    d = Daemon(cfg)
    d.watcher = SimpleNamespace()  # type: ignore[assignment]
    beats: list[dict[str, Any]] = []
    monkeypatch.setattr(d, "_heartbeat", lambda: beats.append(d.overflows.snapshot()))
    real_scan = watch.scan

    def scan(*args: Any) -> Any:
        for found in real_scan(*args):
            beats.append({"during": d.overflows.snapshot()})
            yield found

    monkeypatch.setattr(watch, "scan", scan)
    assert d.overflows.seen(LOST[0])
    d.events.put(watch.Scan(str(cfg.drop), watch.OVERFLOW))
    d.events.put(watch.Scan(str(cfg.drop), "periodic"))  # does not take the overflow's place
    d._drain_events()
    assert beats[0]["rescanning"] and beats[0]["count"] == 1  # written before the walk
    during = [b["during"] for b in beats if "during" in b]
    assert len(during) == 3 and all(b["rescanning"] for b in during)
    after = d.overflows.snapshot()
    assert not after["rescanning"] and after["count"] == 1 and after["rescan_entries"] == 3
    assert after["last_at"] and after["rescanned_at"] and len(d.settler) == 3

    # What `status` makes of those heartbeats, in Indonesian first and in English.
    running = {**during[0]}
    for lang, lost, again in (("id", "hilang", "dipindai ulang"), ("en", "events were lost", "scanning the whole drop folder again")):
        with i18n.using(lang):
            (notice,) = status_cmd.overflow_notices(cfg, running)
            assert lost in notice and again in notice and "inotify" in notice, notice
            assert status_cmd.overflow_notices(cfg, after) == []
            line = status_cmd.overflow_line(cfg, after)
            assert line is not None and "1" in line and "3" in line and "inotify" in line, line
    assert status_cmd.overflow_line(cfg, {"count": 0}) is None and status_cmd.overflow_notices(cfg, None) == []
