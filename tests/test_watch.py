"""Detection: the watch-mode choice from the mount table, and a drop folder on real FUSE."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from naskahd import watch
from naskahd.watch import choose_mode, mount_fstype

from conftest import Daemon, require_root, require_tool, write_config

MOUNTINFO = """\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
40 22 0:35 / /srv/scans rw,relatime - cifs //nas/scans rw,vers=3.0
41 22 0:36 / /srv/nfs rw,relatime - nfs4 nas:/export rw
42 22 7:0 / /media/usb rw,nosuid - fuseblk /dev/loop0 rw
43 40 0:37 / /srv/scans/local rw - ext4 /dev/sdb1 rw
44 22 0:38 / /srv/with\\040space rw - cifs //nas/x rw
"""


@pytest.mark.parametrize(
    ("path", "fstype", "mode"),
    [
        ("/home/x", "ext4", "inotify"),
        ("/srv/scans/masuk", "cifs", "polling"),
        ("/srv/nfs", "nfs4", "polling"),
        ("/media/usb/drop", "fuseblk", "polling"),
        ("/srv/scans/local/drop", "ext4", "inotify"),  # the longest mount point wins
        ("/srv/with space/drop", "cifs", "polling"),
        ("/srv/scansx", "ext4", "inotify"),  # a prefix of a name is not a parent folder
    ],
)
def test_auto_polls_where_inotify_cannot_see_remote_writes(path: str, fstype: str, mode: str) -> None:
    assert mount_fstype(Path(path), MOUNTINFO) == fstype
    assert choose_mode("auto", fstype) == mode


def test_an_explicit_mode_is_kept() -> None:
    assert choose_mode("inotify", "cifs") == "inotify"
    assert choose_mode("polling", "ext4") == "polling"


@pytest.mark.system
def test_drop_folder_on_a_real_fuse_filesystem_is_polled_and_filed(tmp_path: Path) -> None:
    """exFAT through FUSE on a loop device: auto picks polling, and filing works on a
    filesystem without RENAME_NOREPLACE or hard links (review moves use the fallback)."""
    require_root()
    mkfs, mount_fuse = require_tool("mkfs.exfat"), require_tool("mount.exfat-fuse")
    image = tmp_path / "drop.img"
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run([mkfs, str(image)], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], check=True, capture_output=True, text=True).stdout.strip()
    cfg = write_config(tmp_path / "n", settle=0.4)
    drop = cfg.parent / "drop"
    subprocess.run(["rm", "-rf", str(drop)], check=True)
    drop.mkdir()
    d = None
    try:
        subprocess.run([mount_fuse, loop, str(drop)], check=True, capture_output=True)
        for sub in ("masuk", "keluar", "dikecualikan"):
            (drop / sub).mkdir()
        from naskahd import config, installation

        # The new disk becomes the drop folder, as `naskahd init` would have marked it.
        installation.write_markers(config.load(str(cfg)), installation.read_marker(cfg.parent / "archive")["installation"])  # type: ignore[index]
        d = Daemon(cfg.parent, cfg).start()
        started = d.find("daemon.started")[0]
        assert started["watch_mode"] == "polling" and started["filesystem"].startswith("fuse")
        data = os.urandom(10_000)
        (drop / "masuk" / "on-fuse.pdf").write_bytes(data)
        (drop / "stray.pdf").write_bytes(b"x")
        (drop / "stray-again.pdf").write_bytes(b"y")
        d.wait_event("document.registered", timeout=20)
        d.wait_event("document.review", count=2, timeout=20)
        assert not (drop / "masuk" / "on-fuse.pdf").exists()
        assert sorted(os.listdir(drop / "tinjau")) == ["stray-again.pdf", "stray.pdf"]
        (doc,) = d.documents()
        assert (cfg.parent / "archive" / doc["archive_path"]).read_bytes() == data
    finally:
        if d is not None:
            d.stop()
        subprocess.run(["umount", str(drop)], check=False)
        subprocess.run(["losetup", "-d", loop], check=False)


def test_relative_agrees_with_relpath_and_skips_own_folders(tmp_path: Path) -> None:
    """The per-event fast path gives what os.path.relpath gives, and refuses the same paths."""
    from zoneinfo import ZoneInfo

    from naskahd.config import DUPLICATES_FOLDER, REVIEW_FOLDER, Config
    from naskahd.watch import relative

    drop = tmp_path / "drop"
    config = Config(source="test", drop=drop, archive=tmp_path / "a", state=tmp_path / "s", office_name="x",
                    timezone=ZoneInfo("UTC"), ignore=("*.tmp", "@eaDir"))
    d = str(drop)
    cases = {
        f"{d}/masuk/a.pdf": "masuk/a.pdf",
        f"{d}/masuk/sub dir/b c.pdf": "masuk/sub dir/b c.pdf",
        f"{d}/masuk/line\nbreak.pdf": "masuk/line\nbreak.pdf",
        f"{d}/masuk/\udcff.pdf": "masuk/\udcff.pdf",
        f"{d}/masuk/._hidden.pdf": "masuk/._hidden.pdf",  # not ignored by these globs
        f"{d}/masuk/./a.pdf": "masuk/a.pdf",
        f"{d}//masuk/a.pdf": "masuk/a.pdf",
        f"{d}/masuk/../keluar/a.pdf": "keluar/a.pdf",
        f"{d}/masuk/sub/": "masuk/sub",
        f"{d}/masuk/a.tmp": None,
        f"{d}/@eaDir/masuk/a.pdf": None,
        f"{d}/{REVIEW_FOLDER}/a.pdf": None,
        f"{d}/{DUPLICATES_FOLDER}/a.pdf": None,
        d: None,
        f"{d}x/masuk/a.pdf": None,  # a sibling whose name starts like the drop folder
        str(tmp_path / "elsewhere.pdf"): None,
    }
    for path, rel in cases.items():
        assert relative(config, path) == rel, path


def test_renames_are_reported_under_their_new_names_without_pairing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """watchdog is told not to hold moves for pairing (watch.MOVE_PAIRING_SECONDS): every
    rename into place still reports its new name, and a folder renamed inside the drop
    folder is still watched under its new name, paired or not."""
    import queue
    import time
    from zoneinfo import ZoneInfo

    from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper

    from naskahd.config import Config
    from naskahd.watch import MOVE_PAIRING_SECONDS, Scan, Touch, Watcher

    monkeypatch.setattr(InotifyMoveEventGrouper, "delay", 0.5)  # watchdog's own default

    drop = tmp_path / "drop"
    (drop / "masuk" / "old folder").mkdir(parents=True)
    config = Config(source="test", drop=drop, archive=tmp_path / "a", state=tmp_path / "s", office_name="x",
                    timezone=ZoneInfo("UTC"), ignore=("*.part",), watch_mode="inotify")
    events: queue.SimpleQueue = queue.SimpleQueue()
    watcher = Watcher(config, events)
    watcher.start()
    assert InotifyMoveEventGrouper.delay == MOVE_PAIRING_SECONDS == 0
    seen: list[object] = []

    def wait_for(wanted: object) -> None:
        deadline = time.monotonic() + 30
        while wanted not in seen:
            assert time.monotonic() < deadline, f"no {wanted} in {seen[-5:]}"
            try:
                seen.append(events.get(timeout=0.1))
            except queue.Empty:
                pass

    try:
        # 40 renames: about 200 inotify events, inside the kernel's queue (fs.inotify.
        # max_queued_events, 256 on this machine) even if the observer thread is not scheduled
        # until all are made; 300 overflowed it under load, and the events were then lost.
        names = [f"scan {i:03d}.pdf" for i in range(40)]
        for name in names:  # a scanner's way: a temporary name, renamed when complete
            (drop / "masuk" / (name + ".part")).write_bytes(b"%PDF-1.4 " + name.encode())
            os.rename(drop / "masuk" / (name + ".part"), drop / "masuk" / name)
        for name in names:
            wait_for(Touch(str(drop / "masuk" / name)))
        os.rename(drop / "masuk" / "old folder", drop / "masuk" / "new folder")
        (drop / "masuk" / "new folder" / "inside.pdf").write_bytes(b"%PDF-1.4 inside")
        wait_for(Touch(str(drop / "masuk" / "new folder" / "inside.pdf")))
        assert not any(isinstance(e, Touch) and "old folder" in e.path for e in seen)
        assert all(isinstance(e, (Touch, Scan)) for e in seen)
    finally:
        watcher.stop()


@pytest.mark.parametrize(("mode", "fstype", "safe"), [
    ("inotify", "ext4", True), ("polling", "ext4", False), ("inotify", "nfs4", False),
    ("inotify", "cifs", False), ("inotify", "smb3", False), ("auto", "fuse.sshfs", False),
])
def test_early_copies_are_decided_by_the_filesystem_not_only_the_mode(mode: str, fstype: str, safe: bool) -> None:
    assert watch.early_copies_safe(mode, fstype) is safe
