"""powerfs itself (tests/powerfs/): a power cut keeps what was fsynced and nothing else."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import require, require_root
from powerfs import PowerMount, available
from powerfs.model import Model

pytestmark = pytest.mark.system


@pytest.fixture
def pfs(tmp_path: Path) -> Iterator[PowerMount]:
    require_root()
    require(available() is None, f"powerfs cannot run: {available()}")
    m = PowerMount(tmp_path / "mnt", tmp_path / "work").mount()
    try:
        yield m
    finally:
        m.unmount()


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path: Path, data: bytes, *, sync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def test_a_write_without_fsync_is_lost_and_one_with_fsync_kept(pfs: PowerMount) -> None:
    root = pfs.mountpoint
    write(root / "synced", b"kept", sync=True)
    write(root / "unsynced", b"lost", sync=False)
    fsync_path(root)  # both names durable; only one content
    (root / "unsynced").write_bytes(b"lost too")  # rewritten after: never synced either
    write(root / "synced", b"kept, then overwritten without fsync", sync=False)
    pfs.cut()
    with pytest.raises(OSError):
        os.listdir(root)  # frozen until the power comes back
    pfs.remount()
    assert (root / "synced").read_bytes() == b"kept"
    assert (root / "unsynced").read_bytes() == b""  # the name survived, its content did not


def test_a_created_file_needs_its_folder_fsynced(pfs: PowerMount) -> None:
    root = pfs.mountpoint
    (root / "sub").mkdir()
    fsync_path(root)
    write(root / "sub" / "f", b"content", sync=True)  # the file's own fsync: not its name
    pfs.cut()
    pfs.remount()
    assert os.listdir(root / "sub") == []


def test_a_rename_without_the_folder_fsync_is_undone(pfs: PowerMount) -> None:
    root = pfs.mountpoint
    write(root / "tmp", b"data", sync=True)
    fsync_path(root)
    ino = os.stat(root / "tmp").st_ino
    os.rename(root / "tmp", root / "final")
    os.link(root / "final", root / "hardlink")
    assert os.stat(root / "final").st_ino == ino and os.stat(root / "final").st_nlink == 2
    pfs.cut()
    pfs.remount()
    assert sorted(os.listdir(root)) == ["tmp"]
    assert (root / "tmp").read_bytes() == b"data" and os.stat(root / "tmp").st_ino == ino  # inode numbers stay

    os.rename(root / "tmp", root / "final")
    fsync_path(root)
    os.unlink(root / "final")  # not durable: the file comes back
    pfs.cut()
    pfs.remount()
    assert sorted(os.listdir(root)) == ["final"]


def test_rename_noreplace_links_truncate_and_locks_work(pfs: PowerMount) -> None:
    from naskahd import durable

    root = pfs.mountpoint
    write(root / "a", b"a", sync=True)
    write(root / "b", b"b", sync=True)
    with pytest.raises(FileExistsError):
        durable.rename_noreplace(root / "a", root / "b")
    assert (root / "b").read_bytes() == b"b"
    durable.write_bytes(root / "c", b"durable")  # temp file, fsync, rename, folder fsync
    counts = pfs.stats()["counts"]
    assert counts["rename"] == 1 and counts["link"] == 0  # renameat2's flag reached powerfs: no link fallback
    with open(root / "a", "r+b") as f:
        f.truncate(0)
        f.write(b"0123456789")
        f.seek(3)
        f.write(b"x")
        f.flush()
        os.fdatasync(f.fileno())
    fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    other = subprocess.run([sys.executable, "-c", (
        "import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n sys.exit(3)\n"
    ), str(root / "lock")])
    assert other.returncode == 3  # another process sees the lock
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    fsync_path(root)
    pfs.cut()
    pfs.remount()
    assert (root / "c").read_bytes() == b"durable"
    assert (root / "a").read_bytes() == b"012x456789"
    assert not any(n.startswith(durable.TEMP_PREFIX) for n in os.listdir(root))


def test_sqlite_in_wal_mode_keeps_what_was_committed(pfs: PowerMount) -> None:
    """register/db.py's settings on powerfs: WAL (its -shm mapped shared), synchronous=FULL."""
    db = pfs.mountpoint / "register.sqlite3"
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE t (n INTEGER)")
    con.commit()
    fsync_path(pfs.mountpoint)  # the database's and the WAL's names (SQLite fsyncs no folder)
    for n in range(50):
        con.execute("INSERT INTO t VALUES (?)", (n,))
        con.commit()
    reader = sqlite3.connect(db)  # a second connection reads through the shared -shm
    assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 50
    con.execute("INSERT INTO t VALUES (-1)")  # not committed
    pfs.cut()
    con.close()
    reader.close()
    pfs.remount()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*), min(n) FROM t").fetchone() == (50, 0)
    con.close()


def test_an_armed_cut_kills_the_victim_at_the_nth_fsync(pfs: PowerMount) -> None:
    root = pfs.mountpoint
    script = (
        "import os, sys\nroot = sys.argv[1]\nsys.stdin.read()\n"
        "for i in range(10):\n"
        "    fd = os.open(f'{root}/f{i}', os.O_WRONLY | os.O_CREAT, 0o644)\n"
        "    os.write(fd, b'x' * 100)\n    os.fsync(fd)\n    os.close(fd)\n"
        "    d = os.open(root, os.O_RDONLY)\n    os.fsync(d)\n    os.close(d)\n"
        "    print(i, flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    # the child starts writing once the cut is armed (its stdin closes)
    pfs.arm("fsync", 4, phase="after", victims=[proc.pid])
    out, _ = proc.communicate(b"", timeout=30)
    assert proc.returncode == -9
    assert out.split() == [b"0", b"1", b"2"]  # the 4th fsync took effect, its answer never came
    fired = pfs.stats()["fired"]
    assert fired["kind"] == "fsync" and fired["path"] == "/f3"
    pfs.remount()
    assert sorted(os.listdir(root)) == ["f0", "f1", "f2"]  # f3's data is durable, its name was not


def test_the_model_collects_inodes_whose_names_were_lost() -> None:
    m = Model()
    node = m.create("/a", 0o100644)
    m.write(node, b"data", 0)
    m.fsync(node)  # content durable, no name for it
    again = Model(m.durable)
    assert again.live[1].entries == {} and node.ino not in again.live


def test_an_inode_number_freed_by_a_cut_never_brings_old_content_back() -> None:
    """A file fsynced but never named is gone after the cut; a new file that gets its inode
    number must not come back with the old content after the next cut."""
    m = Model()
    old = m.create("/old", 0o100644)
    m.write(old, b"old content", 0)
    m.fsync(old)  # content durable, name never
    m = Model(m.durable)  # the cut, the remount
    new = m.create("/new", 0o100644)
    m.fsyncdir(m.live[1])  # the name durable, the content never: empty after a cut
    again = Model(m.durable)
    assert again.read(again.lookup("/new"), 100, 0) == b""
