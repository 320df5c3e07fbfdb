"""Issue 15 item 12: staying up when the state disk is full.

The state folder is a small loop-mounted ext4 (1 KiB blocks, as mkfs picks for a small
disk), filled to the last block with a filler file, under the real daemon. Also: a failed
final commit (step 5, after the sources were removed) is shown by `status` while the
daemon runs, through an injected fault.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Daemon, require_root, require_tool, wait_until, write_config
from faults import fill
from naskahd import config, installation

pytestmark = pytest.mark.system

FULL = "is full"  # in both the daemon's and status's own words for it


@pytest.fixture
def small_state(tmp_path: Path) -> Iterator[Path]:
    """A configuration whose state folder is a 16 MiB ext4 on a loop device."""
    require_root()
    mkfs = require_tool("mkfs.ext4")
    require_tool("losetup")
    cfg = write_config(tmp_path / "naskahd", settle=0.3)
    image = tmp_path / "state.img"
    with open(image, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run([mkfs, "-q", "-F", str(image)], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], check=True, capture_output=True, text=True).stdout.strip()
    state = cfg.parent / "state"
    try:
        subprocess.run(["mount", loop, str(state)], check=True, capture_output=True)
        try:
            # The state root's marker, hidden by the mount, again on the new disk.
            loaded = config.load(str(cfg))
            installation.write_markers(loaded, installation.read_marker(loaded.drop)["installation"])
            yield cfg
        finally:
            subprocess.run(["umount", str(state)], check=False, capture_output=True)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False, capture_output=True)


def drop(d: Daemon, name: str) -> Path:
    path = d.drop / "masuk" / name
    path.write_bytes(os.urandom(20_000))  # no known type: the content check has nothing to wait for
    return path


def status(d: Daemon) -> tuple[int, dict]:
    done = d.cli("status", "--json")
    assert done.returncode >= 0, f"status was killed by signal {-done.returncode}: {done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_the_daemon_keeps_running_on_a_full_state_disk_and_says_why(small_state: Path) -> None:
    d = Daemon(small_state.parent, small_state).start()
    try:
        drop(d, "before.pdf")
        d.wait_event("document.registered")
        filler = fill(d.state)
        # Filed if the register's WAL still has room for it, else kept in the drop folder
        # and retried: either way, never lost (and its heartbeat changes must not kill).
        waiting = drop(d, "during.pdf")
        wait_until(lambda: d.find("document.failed") or d.find("document.registered", path="masuk/during.pdf"),
                   30, "the scan filed or failing", d)
        d.wait_event("state.disk_full", timeout=20)
        # status: the disk is full, in its own words and in the daemon's, whose heartbeat
        # was rewritten in place on the full disk.
        code, info = status(d)
        assert code == 1
        assert info["daemon"]["running"] and info["state_disk_full"]
        assert any(FULL in p and str(d.state) in p for p in info["problems"]), info["problems"]
        wait_until(lambda: any("keeps running" in p for p in status(d)[1]["problems"]), 20, "the daemon's words in status", d)
        if not d.find("document.registered", path="masuk/during.pdf"):
            assert waiting.exists(), "a scan left the drop folder without being registered"
        assert d.proc is not None and d.proc.poll() is None
        human = d.cli("status", env={"LANGUAGE": "en"})
        assert human.returncode == 1 and FULL in human.stdout and "unknown" in human.stdout, human.stdout
        # Space back: the waiting scan is filed, and status is healthy again.
        filler.unlink()
        d.wait_event("state.disk_space_back", timeout=20)
        d.wait_event("document.registered", count=2, timeout=120)
        assert not waiting.exists()
        wait_until(lambda: status(d)[0] == 0, 20, "status 0 again", d)
        assert d.stop() == 0
    finally:
        d.stop()


def test_after_a_crash_on_a_full_state_disk_status_list_and_run_answer(small_state: Path) -> None:
    d = Daemon(small_state.parent, small_state).start()
    for i in range(3):
        drop(d, f"letter-{i}.pdf")
    d.wait_event("document.registered", count=3)
    d.kill()
    shm = d.state / "register.sqlite3-shm"
    assert shm.exists() and (d.state / "register.sqlite3-wal").exists(), "precondition: -wal/-shm left behind"
    # Make the SIGBUS certain rather than likely: the -shm with no blocks (as a crash can
    # leave part of it), and another reader holding it open (its DMS lock, byte 128), so
    # the next connection maps it as it is instead of truncating it. Any write to a page
    # of it then needs a block the full disk does not have.
    os.truncate(shm, 0)
    os.truncate(shm, 32768)
    filler = fill(d.state)
    fd = os.open(shm, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 128, os.SEEK_SET)
        code, info = status(d)
        assert code == 1, info
        assert not info["daemon"]["running"] and info["state_disk_full"]
        assert any(FULL in p and "df " in p for p in info["problems"]), info["problems"]
        for command in (["list"], ["run", "--log-format", "json"]):
            done = subprocess.run([sys.executable, "-m", "naskahd", "--config", str(small_state), *command],
                                  capture_output=True, text=True, timeout=60, env={**d.env, "LANGUAGE": "en"})
            assert done.returncode == 1, (command, done.returncode, done.stderr)
            assert FULL in done.stderr and str(d.state) in done.stderr, done.stderr
            assert "Traceback" not in done.stderr
    finally:
        os.close(fd)
    # Nothing was harmed: with space back the register opens and holds the three letters.
    filler.unlink()
    d.start()
    try:
        assert [doc["state"] for doc in d.documents()] == ["filed"] * 3
    finally:
        d.stop()


# The real daemon with the final commit (step 5, after the sources were removed) failing
# while the file FAULT exists, and the start-up-like retry of those rows failing too.
INJECT = """
import os, sqlite3, sys
from sqlalchemy.exc import OperationalError
from naskahd import service
from naskahd.filing import filer, reconcile
FAULT = os.environ["NASKAHD_TEST_FAULT"]
service.HALF_DONE_RETRY_SECONDS = 0.5

def failing(real):
    def wrapper(*args, **kwargs):
        if os.path.exists(FAULT):
            raise OperationalError("UPDATE documents ...", {}, sqlite3.OperationalError("database or disk is full"))
        return real(*args, **kwargs)
    return wrapper

filer.Filer._mark = failing(filer.Filer._mark)
reconcile.Reconciler.finish = failing(reconcile.Reconciler.finish)
from naskahd.cli import main
sys.exit(main(sys.argv[4:]))  # after: python -m naskahd
"""


def test_a_failed_final_commit_is_shown_while_the_daemon_runs(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "naskahd", settle=0.3)
    fault = tmp_path / "fault"
    inject = tmp_path / "inject.py"
    inject.write_text(INJECT)
    fault.touch()
    d = Daemon(cfg.parent, cfg, prefix=[sys.executable, str(inject)], env={"NASKAHD_TEST_FAULT": str(fault)})
    d.start()
    try:
        source = drop(d, "letter.pdf")
        d.wait_event("filing.batch_failed")
        assert not source.exists(), "precondition: the fault struck after the source was removed"

        def half_done() -> list[str]:
            return [p for p in status(d)[1]["problems"] if "stopped half-way" in p]

        wait_until(half_done, 10, "the half-done batch in status", d)
        # Still shown once the daemon has long given up on the scan itself (it is gone), and
        # the retry of its rows has failed several times.
        d.wait_event("filing.finish_retry_failed", count=3, timeout=30)
        (problem,) = half_done()
        assert "database or disk is full" in problem and "letter.pdf" not in problem and "UPDATE" not in problem
        code, _info = status(d)
        assert code == 1
        fault.unlink()
        d.wait_event("filing.half_done_finished", timeout=30)
        wait_until(lambda: status(d)[0] == 0, 20, "status 0 once the rows are finished", d)
        assert [doc["state"] for doc in d.documents()] == ["filed"]
    finally:
        d.stop()
