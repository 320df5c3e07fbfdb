"""The copy pipeline (drives/batches.py) on a real loop-mounted ext4 drive: the order of its
steps, which is what makes a recorded copy durable and verified, across its threads."""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from pathlib import Path

from drives_fixtures import Drives, drives, udevd  # noqa: F401  (fixtures)
from naskahd import durable
from naskahd.drives import batches, copy, mounts, plan, sync


def _archive(root: Path, n: int) -> list[plan.Item]:
    items = []
    for i in range(1, n + 1):
        rel = f"inbound/2026/12/{i:04d}-M-2026_scan {i}.pdf"
        data = os.urandom(100 + 37 * i)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        wanted = plan.Wanted(i, f"{i:04d}/M/2026", "inbound", rel, len(data), hashlib.sha256(data).hexdigest())
        items.append(plan.Item(wanted, f"naskah/{rel}"))
    return items


def test_each_file_is_flushed_before_its_rename_and_its_rename_before_it_is_read_back(
        tmp_path: Path, drives: Drives, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Across the three threads (write; flush and rename; read back): a file's data is
    flushed before it gets its final name, that name is flushed before the file is read
    back, it is read without touching its access time (the read-back dirties nothing after
    the flush), and only what was read back is yielded as verified."""
    image = drives.make("ext4", size_mb=64)
    image.attach()
    mp = image.mount(tmp_path / "mnt")
    archive = tmp_path / "archive"
    items = _archive(archive, 300)
    events: list[tuple[int, str, str, str]] = []  # seq, what, file, thread
    seq = itertools.count()
    lock = threading.Lock()

    def log(what: str, name: str = "") -> None:
        with lock:
            events.append((next(seq), what, name, threading.current_thread().name))

    real_syncfs, real_write, real_rename, real_open = batches.syncfs, batches._write_temp, batches._rename_noreplace, batches._open_to_check

    def syncfs(fd: int) -> None:
        log("flush-start")
        real_syncfs(fd)
        log("flush-end")

    def write_temp(source: str, dirfd: int, *, fsync: bool = False) -> str:
        temp = real_write(source, dirfd, fsync=fsync)
        log("written", source.rpartition("/")[2])
        return temp

    def rename(dirfd: int, src: str, dst: str) -> None:
        real_rename(dirfd, src, dst)
        log("renamed", dst)

    def open_to_check(name: str, dirfd: int) -> int:
        log("read", name)
        return real_open(name, dirfd)

    monkeypatch.setattr(batches, "syncfs", syncfs)
    monkeypatch.setattr(batches, "_write_temp", write_temp)
    monkeypatch.setattr(batches, "_rename_noreplace", rename)
    monkeypatch.setattr(batches, "_open_to_check", open_to_check)
    mount = mounts.at(mp)
    assert mount is not None
    verified = []
    with copy.DriveRoot(mount) as root:
        for result in batches.copy_batches(root, archive, sync._batches(items, first=8)):
            assert not result.failed and result.full is None
            for item, _size, _sha in result.verified:
                log("verified", item.drive_path.rpartition("/")[2])
                verified.append(item)
    assert [i.wanted.document_id for i in verified] == [i.wanted.document_id for i in items]

    starts = [s for s, what, _n, _t in events if what == "flush-start"]
    ends = [s for s, what, _n, _t in events if what == "flush-end"]
    at = {(what, name): s for s, what, name, _t in events if name}

    def flushed_between(a: int, b: int) -> bool:  # a whole flush started after a and ended before b
        return any(a < s and e < b for s, e in zip(starts, ends))

    for item in items:
        name = item.drive_path.rpartition("/")[2]
        assert flushed_between(at[("written", name)], at[("renamed", name)]), name
        assert flushed_between(at[("renamed", name)], at[("read", name)]), name
        assert at[("read", name)] < at[("verified", name)], name
        st = os.stat(mp / item.drive_path)
        assert st.st_atime_ns <= st.st_mtime_ns, f"{name}: the read-back updated its access time"
        assert (mp / item.drive_path).read_bytes() == (archive / item.wanted.archive_path).read_bytes()
    threads = {what: {t for _s, w, _n, t in events if w == what} for what in ("flush-start", "written", "read")}
    assert all(t.startswith("naskahd-flush") for t in threads["flush-start"] if t != threading.current_thread().name)
    assert any(t.startswith("naskahd-flush") for t in threads["flush-start"]), "the flushes run on the flush thread"
    assert threads["written"] == {threading.current_thread().name}
    assert all(t.startswith("naskahd-verify") for t in threads["read"])
    assert not [n for n in os.listdir(mp / "naskah/inbound/2026/12") if n.startswith(durable.TEMP_PREFIX)], "no temp file is left"
