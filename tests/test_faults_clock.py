"""Issue 22, fault campaign: the wall clock jumps (forward a day, back an hour) under the
running daemon, through Debian's libfaketime (LD_PRELOAD; the offset is re-read from a file
every second, the monotonic clock is left alone as a real clock jump leaves it)."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from conftest import Daemon, require, wait_until, write_config
from faults import no_traceback, nothing_lost, status

pytestmark = pytest.mark.system

LIBFAKETIME = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1")
WIB = dt.timezone(dt.timedelta(hours=7))  # the test configuration's office time (Asia/Jakarta)


class Clock:
    """The faked wall clock of every process started with ``env``."""

    def __init__(self, folder: Path) -> None:
        lib = next((p for p in LIBFAKETIME if os.path.exists(p)), None)
        require(lib is not None, "libfaketime is not installed (Debian package faketime)")
        self.file = folder / "faketime"
        self.env = {"LD_PRELOAD": str(lib), "FAKETIME_TIMESTAMP_FILE": str(self.file), "FAKETIME_CACHE_DURATION": "1",
                    "FAKETIME_DONT_FAKE_MONOTONIC": "1"}

    def set(self, when: dt.datetime) -> None:
        offset = (when - dt.datetime.now(dt.UTC)).total_seconds()
        self.file.write_text(f"{offset:+.0f}\n")

    def jump(self, seconds: float) -> None:
        offset = float(self.file.read_text())
        self.file.write_text(f"{offset + seconds:+.0f}\n")
        # libfaketime reads the file again only once FAKETIME_CACHE_DURATION has passed
        # since its last read, at a later clock call: 1.5 s after the write was not always
        # enough (a letter filed just after still got the old offset, seen in CI).
        time.sleep(2.5)


def test_the_clock_jumping_forward_a_day_and_back_an_hour_across_new_year(tmp_path: Path) -> None:
    clock = Clock(tmp_path)
    clock.set(dt.datetime(2026, 12, 31, 23, 50, tzinfo=WIB))
    cfg = write_config(tmp_path / "naskahd", settle=0.3)
    d = Daemon(cfg.parent, cfg, env=clock.env).start()
    try:
        dropped: dict[str, bytes] = {}

        def file(rel: str, count: int) -> dict:  # type: ignore[type-arg]
            dropped[rel] = os.urandom(5000)
            (d.drop / rel).write_bytes(dropped[rel])
            return d.wait_event("document.registered", count=count, timeout=30)

        assert file("masuk/old-year.pdf", 1)["agenda"] == "0001/M/2026"
        clock.jump(86400)  # forward a day: 2027-01-01 23:50 office time
        assert file("masuk/new-year.pdf", 2)["agenda"] == "0001/M/2027"
        clock.jump(-3600)  # back an hour: still 2027 in office time
        assert file("masuk/an-hour-back.pdf", 3)["agenda"] == "0002/M/2027"
        # status agrees after each jump: the daemon is running and healthy again by itself
        wait_until(lambda: status(d)[0] == 0, 40, "status healthy after the jumps", d)
        docs = {doc["agenda"]: doc for doc in d.documents()}
        received = {a: dt.datetime.fromisoformat(doc["received_at"]).astimezone(WIB) for a, doc in docs.items()}
        assert received["0001/M/2026"].date() == dt.date(2026, 12, 31)
        assert received["0001/M/2027"].date() == dt.date(2027, 1, 1)
        assert received["0002/M/2027"].date() == dt.date(2027, 1, 1)
        nothing_lost(d, dropped)
        no_traceback(d)
    finally:
        assert d.stop() == 0
