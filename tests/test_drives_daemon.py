"""The real daemon and real drives: udev events from loop devices, real mounts.

The daemon is never told about a drive: it learns of it from udev and the mount table.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Daemon, naskahd_cmd, wait_until, write_config
from drives_fixtures import Drives, drives, tree_hashes, udevd, udisks  # noqa: F401  (fixtures)

pytestmark = pytest.mark.system


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(naskahd_cmd("--config", str(cfg), *args), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LANG": "C.UTF-8"})


def start(tmp_path: Path, files: dict[str, bytes]) -> Daemon:
    cfg = write_config(tmp_path / "naskahd", settle=0.2)
    d = Daemon(cfg.parent, cfg).start()
    d.wait_event("drives.watching", timeout=30)
    for rel, data in files.items():
        (d.drop / rel).write_bytes(data)
    wait_until(lambda: len(d.documents()) == len(files), 120, "all filed", d)
    return d


def register(d: Daemon, drives: Drives, tmp_path: Path, name: str, fstype: str = "ext4", **kw):  # type: ignore[no-untyped-def]
    """A new drive registered with the CLI while mounted, then unplugged."""
    image = drives.make(fstype, **kw)
    image.attach()
    mp = image.mount(tmp_path / f"mnt-{name}")
    out = cli(d.config, "drive", "register", str(mp), "--name", name)
    assert out.returncode == 0, out.stderr
    image.unplug()
    return image


def drive_status(d: Daemon, name: str) -> dict:  # type: ignore[type-arg]
    return next(x for x in d.status()["drives"] if x["name"] == name)


def on_drive_matches_register(d: Daemon, mp: Path) -> None:
    hashes = tree_hashes(mp / "naskah")
    out = cli(d.config, "verify", "--json")
    assert out.returncode == 0, out.stdout
    docs = d.documents()
    assert json.loads(out.stdout)["drives"]
    for doc in docs:
        want = doc["ciphertext_sha256"] or doc["sha256"]
        assert want in hashes.values(), doc["agenda"]


def test_a_registered_drive_is_synced_on_mount_an_unknown_one_ignored_a_look_alike_refused(tmp_path: Path, drives: Drives) -> None:
    files = {f"masuk/surat {i}.pdf": os.urandom(2000 + i) for i in range(8)}
    d = start(tmp_path, files)
    image = register(d, drives, tmp_path, "safe1", label="KANTOR")
    uuid = drive_status(d, "safe1")["uuid"]
    assert drive_status(d, "safe1")["present"] is False

    image.attach()
    mp = image.mount(tmp_path / "media" / "safe1")
    synced = d.wait_event("drive.synced", timeout=60, drive="safe1")
    assert synced["copied"] == 8
    on_drive_matches_register(d, mp)
    st = wait_until(lambda: (s := drive_status(d, "safe1"))["state"] == "idle" and s, 10, "idle")
    assert st["present"] and st["mountpoint"] == str(mp) and st["pending_files"] == 0 and st["last_verified"]
    human = d.cli("status").stdout
    assert "Drive safe1: idle" in human and "put back in the safe" in human

    # a letter filed while the drive is in: copied when it is plugged in next time
    image.unplug()
    (d.drop / "masuk" / "late.pdf").write_bytes(b"late letter")
    wait_until(lambda: len(d.documents()) == 9, 60, "filed", d)
    assert wait_until(lambda: drive_status(d, "safe1")["pending_files"] == 1, 10, "pending 1")
    image.attach()
    mp = image.mount(tmp_path / "media" / "safe1")
    assert d.wait_event("drive.synced", timeout=60, count=2, drive="safe1")["copied"] == 1
    image.unplug()

    # an unregistered drive: not a byte written, no event about it
    other = drives.make("ext4", label="OTHER")
    other.attach()
    omp = other.mount(tmp_path / "media" / "other")
    before = sorted(os.listdir(omp))
    time.sleep(2)
    assert sorted(os.listdir(omp)) == before == ["lost+found"]
    other.unplug()

    # a look-alike with the same UUID and label: refused, nothing written, a security event
    fake = drives.make("ext4", uuid=uuid, label="KANTOR")
    fake.attach()
    fmp = fake.mount(tmp_path / "media" / "fake")
    refused = d.wait_event("security.drive_refused", timeout=60, drive="safe1")
    assert "no naskahd identity token" in refused["reason"]
    assert sorted(os.listdir(fmp)) == ["lost+found"]
    st = wait_until(lambda: (s := drive_status(d, "safe1"))["state"] == "refused" and s, 10, "refused")
    assert "nothing was written" in st["problem"]
    status = d.status()
    assert any("refused" in p for p in status["problems"])
    assert d.cli("status").returncode == 1
    fake.unplug()


def test_a_drive_unplugged_mid_sync_keeps_the_daemon_running_and_the_next_plug_in_resumes(tmp_path: Path, drives: Drives) -> None:
    n = 4000  # a sync of several seconds: the unplug falls inside it
    d = start(tmp_path, {f"masuk/s{i:04d}.pdf": os.urandom(20_000) for i in range(n)})
    image = register(d, drives, tmp_path, "safe1", size_mb=256)
    image.attach()
    image.mount(tmp_path / "media" / "safe1")
    d.wait_event("drive.sync_started", timeout=60, drive="safe1")
    time.sleep(0.2)
    image.umount(lazy=True)
    image.detach()
    stopped = d.wait_event("drive.sync_stopped", timeout=120, drive="safe1")
    assert stopped["state"] == "gone" and 0 < stopped["missing"] <= n, stopped
    assert d.proc is not None and d.proc.poll() is None
    st = drive_status(d, "safe1")
    assert st["state"] == "error" and "plug it in again" in st["problem"]
    recorded = n - st["pending_files"]
    # the daemon still files
    (d.drop / "masuk" / "during.pdf").write_bytes(b"after the unplug")
    wait_until(lambda: len(d.documents()) == n + 1, 60, "filed", d)

    image.attach()
    mp = image.mount(tmp_path / "media" / "safe1")
    synced = d.wait_event("drive.synced", timeout=180, drive="safe1")
    assert synced["copied"] == n + 1 - recorded and synced["failed"] == 0
    on_drive_matches_register(d, mp)
    assert not [p for p in mp.rglob(".naskahd-tmp-*")]


def test_a_full_drive_and_a_read_only_one_are_reported(tmp_path: Path, drives: Drives) -> None:
    d = start(tmp_path, {f"masuk/big{i}.pdf": os.urandom(400_000) for i in range(30)})
    small = register(d, drives, tmp_path, "small", size_mb=8)
    small.attach()
    small.mount(tmp_path / "media" / "small")
    stopped = d.wait_event("drive.sync_stopped", timeout=60, drive="small")
    assert stopped["state"] == "full"
    st = wait_until(lambda: (s := drive_status(d, "small"))["problem"] and s, 10, "problem")
    assert "is full" in st["problem"] and f"{st['pending_files']} file(s)" in st["problem"] and "MB" in st["problem"]
    assert 0 < st["pending_files"] < 30
    small.unplug()

    ro = register(d, drives, tmp_path, "ro", size_mb=64)
    ro.attach()
    ro.mount(tmp_path / "media" / "ro", read_only=True)
    stopped = d.wait_event("drive.sync_stopped", timeout=60, drive="ro")
    assert stopped["state"] == "read_only"
    st = wait_until(lambda: (s := drive_status(d, "ro"))["problem"] and s, 10, "problem")
    assert "read-only" in st["problem"] and "30 file(s)" in st["problem"]
    assert d.proc is not None and d.proc.poll() is None


HOSTILE = [
    "a:b?c*.pdf", "Surat<1>|2.pdf", 'kutip"an.pdf', "back\\slash.pdf", "titik di akhir.", "spasi di akhir ",
    "CON", "nul.txt", "\U0001F600" * 60 + ".pdf", "x" * 240 + ".pdf", "Surat.pdf", "surat.pdf", "ctrl\x01.pdf",
]


@pytest.mark.parametrize("fstype", ["exfat", "ntfs"])
def test_hostile_names_are_mapped_on_exfat_and_ntfs_and_every_hash_matches(tmp_path: Path, drives: Drives, fstype: str) -> None:
    files = {f"masuk/{name}": os.urandom(500 + i) for i, name in enumerate(HOSTILE)}
    d = start(tmp_path, files)
    image = register(d, drives, tmp_path, "usb", fstype=fstype)
    image.attach()
    mp = image.mount(tmp_path / "media" / "usb")
    synced = d.wait_event("drive.synced", timeout=120, drive="usb")
    assert synced["copied"] == len(HOSTILE) and synced["failed"] == 0, d.log_text()[-3000:]
    on_drive_matches_register(d, mp)
    manifest = [json.loads(line) for line in (mp / "naskah" / ".naskahd" / "manifest.jsonl").read_text().splitlines()]
    mapped = {r["archive_path"]: r["drive_path"] for r in manifest if r["kind"] == "document"}
    assert len(mapped) == len(HOSTILE)
    assert any(a != b for a, b in mapped.items())  # the mapping is recorded where it changed a name
    for path in mapped.values():
        assert not any(c in path.rpartition("/")[2] for c in '<>:"\\|?*')


def test_naskahd_sync_while_the_daemon_syncs_waits_for_the_same_lock(tmp_path: Path, drives: Drives) -> None:
    n = 4000  # a sync of several seconds: the CLI starts well inside it
    d = start(tmp_path, {f"keluar/k{i:04d}.pdf": os.urandom(20_000) for i in range(n)})
    image = register(d, drives, tmp_path, "safe1", size_mb=256)
    image.attach()
    mp = image.mount(tmp_path / "media" / "safe1")
    d.wait_event("drive.sync_started", timeout=60, drive="safe1")
    out = cli(d.config, "sync", "--drive", "safe1")
    assert out.returncode == 0, out.stdout + out.stderr
    # one after the other: the daemon copied everything, the CLI waited and found nothing left
    assert "waiting for it to finish" in out.stderr and "0 file(s) copied and verified" in out.stdout
    assert d.wait_event("drive.synced", timeout=10, drive="safe1")["copied"] == n
    on_drive_matches_register(d, mp)


def test_a_registered_drive_already_mounted_at_start_up_is_synced(tmp_path: Path, drives: Drives) -> None:
    d = start(tmp_path, {"masuk/a.pdf": b"first", "keluar/b.pdf": b"second"})
    d.stop()
    image = drives.make("ext4")
    image.attach()
    mp = image.mount(tmp_path / "media" / "safe1")
    assert cli(d.config, "drive", "register", str(mp), "--name", "safe1").returncode == 0
    d.start()
    assert d.wait_event("drive.synced", timeout=60, drive="safe1")["copied"] == 2
    on_drive_matches_register(d, mp)


# fusefat (FUSE; this kernel has no vfat module) refuses names outside Unicode's basic
# plane (EPERM), which the kernel's vfat and Windows accept: the emoji name is left out here.
HOSTILE_FAT = [n for n in HOSTILE if not n.startswith("\U0001F600")]
BIG = 4 * 1024**3 + 1  # one byte over what a FAT32 file can hold
BIG_SHA256 = "fbb82f7b353676bb562eb82157fcf0ea42c36492ca13ee56dbf82c08b6802c5c"


def add_big_document(cfg: Path) -> str:
    """A filed document of 4 GiB + 1 byte (a sparse archive file, registered directly: filing
    it is not what this test is about); its agenda number."""
    import datetime as dt

    from sqlalchemy import insert

    from naskahd import config
    from naskahd.register import Document, open_register

    loaded = config.load(str(cfg))
    folder = loaded.archive / "inbound" / "2025" / "06"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "0001-M-2025_peta besar.tif"
    with open(path, "wb") as f:
        f.truncate(BIG)
    digest = BIG_SHA256  # of BIG zero bytes, the sparse file's content (verify --archive checks it)
    sessions = open_register(loaded.database_url)
    with sessions.begin() as s:
        s.execute(insert(Document.__table__), [dict(
            agenda="0001/M/2025", category="inbound", year=2025, number=1, original_name="peta besar.tif",
            source_relpath=b"masuk/peta besar.tif", archive_path=str(path.relative_to(loaded.archive)), size=BIG,
            sha256=digest, received_at=dt.datetime.now(dt.UTC), state="filed")])
    sessions.kw["bind"].dispose()
    return "0001/M/2025"


def test_fat32_hostile_names_mapped_a_file_over_4_gib_reported_and_no_recopying(tmp_path: Path, drives: Drives) -> None:
    files = {f"masuk/{name}": os.urandom(500 + i) for i, name in enumerate(HOSTILE_FAT)}
    d = start(tmp_path, files)
    big = add_big_document(d.config)
    image = register(d, drives, tmp_path, "usb", fstype="fat32", label="ARSIP")
    listed = json.loads(cli(d.config, "drive", "list", "--json").stdout)
    assert listed[0]["pending_files"] == len(HOSTILE_FAT) + 1
    image.attach()
    mp = image.mount(tmp_path / "media" / "usb")
    synced = d.wait_event("drive.synced", timeout=120, drive="usb")
    # the rest went on: every other file copied and verified; the big one reported by agenda number
    assert synced["copied"] == len(HOSTILE_FAT) and synced["failed"] == 1, d.log_text()[-3000:]
    st = wait_until(lambda: (s := drive_status(d, "usb"))["problem"] and s, 10, "problem")
    assert big in st["problem"] and "4 GiB" in st["problem"] and "FAT32" in st["problem"], st
    assert st["pending_files"] == 1
    hashes = tree_hashes(mp / "naskah")
    for doc in d.documents():
        if doc["agenda"] != big:
            assert doc["sha256"] in hashes.values(), doc["agenda"]
    manifest = (mp / "naskah" / ".naskahd" / "manifest.jsonl").read_text().splitlines()
    mapped = {r["archive_path"]: r["drive_path"] for r in map(json.loads, manifest) if r["kind"] == "document"}
    assert len(mapped) == len(HOSTILE_FAT) and any(a != b for a, b in mapped.items())
    for path in mapped.values():
        assert not any(c in path.rpartition("/")[2] for c in '<>:"\\|?*')
    out = cli(d.config, "verify", "--json")
    found = json.loads(out.stdout)["drives"]["usb"]  # what the register says is on it is there, unchanged
    assert out.returncode == 0 and found["checked"] == len(HOSTILE_FAT) and found["ok"], found
    # FAT keeps times to 2 seconds: nothing is copied again (the register decides, not mtimes)
    times = {p: p.stat().st_mtime for p in (mp / "naskah").rglob("*") if p.is_file() and ".naskahd" not in p.parts}
    time.sleep(2.1)
    again = cli(d.config, "sync", "--drive", "usb")
    assert "0 file(s) copied" in again.stdout and big in again.stdout, again.stdout
    assert {p: p.stat().st_mtime for p in times} == times
    assert (mp / "naskah" / ".naskahd" / "manifest.jsonl").read_text().splitlines()[: len(manifest)] == manifest


def test_eject_after_sync_unmounts_the_drive_through_real_udisks(tmp_path: Path, drives: Drives, udisks: dict[str, str]) -> None:
    """``[drives] eject_after_sync``: after a verified sync the daemon runs ``udisksctl
    unmount`` then ``power-off`` (a real udisksd on a private bus). A loop device has no
    drive to power off (udisksctl fails there), so it is ejected, unmounted, not powered off."""
    from naskahd.drives import sync

    assert [c[1] for c in sync.eject_commands("udisksctl", "/dev/x")] == ["unmount", "power-off"]
    cfg = write_config(tmp_path / "naskahd", settle=0.2, extra="[drives]\neject_after_sync = true\n")
    d = Daemon(cfg.parent, cfg, env=udisks).start()
    d.wait_event("drives.watching", timeout=30)
    (d.drop / "masuk" / "a.pdf").write_bytes(b"first")
    wait_until(lambda: len(d.documents()) == 1, 60, "filed", d)
    image = register(d, drives, tmp_path, "safe1")
    image.attach()
    mp = image.mount(tmp_path / "media" / "safe1")
    assert d.wait_event("drive.synced", timeout=60, drive="safe1")["copied"] == 1
    ejected = d.wait_event("drive.ejected", timeout=60, drive="safe1")
    assert ejected["powered_off"] is False and ejected["power_off_error"], ejected
    assert not os.path.ismount(mp), "udisksctl unmount did not unmount the drive"
    image.mountpoint = None  # unmounted by udisks
    assert d.proc is not None and d.proc.poll() is None
    # plugged in again (mounted) with nothing new: synced, nothing copied, ejected again
    image.mount(tmp_path / "media" / "safe1")
    assert d.wait_event("drive.ejected", count=2, timeout=60, drive="safe1")
