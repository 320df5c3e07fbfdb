"""Real drives for the tests: filesystem images on loop devices, real udev, real mounts.

Not a conftest: test modules import ``udevd`` and ``drives`` from here. Loop devices are
always taken with ``losetup -f --show`` (other test runs use loop devices at the same
time) and every mount and loop device made here is undone at teardown.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import require, require_root, require_tool

UDEVD = ("/usr/lib/systemd/systemd-udevd", "/lib/systemd/systemd-udevd")


def udev_running() -> bool:
    return subprocess.run(["udevadm", "control", "--ping"], capture_output=True).returncode == 0


def ensure_udevd() -> None:
    """Start systemd-udevd (as a daemon of its own) when none runs; CI's machine has none."""
    require_root()
    require_tool("udevadm")
    if udev_running():
        return
    binary = next((b for b in UDEVD if os.path.exists(b)), None)
    require(binary is not None, "systemd-udevd is not installed (Debian package udev)")
    subprocess.run([binary, "--daemon"], check=True, capture_output=True)
    deadline = time.monotonic() + 10
    while not udev_running():
        assert time.monotonic() < deadline, "systemd-udevd did not start"
        time.sleep(0.1)


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=120)


class Image:
    def __init__(self, owner: Drives, path: Path, fstype: str) -> None:
        self.owner, self.path, self.fstype = owner, path, fstype
        self.loop: str | None = None
        self.mountpoint: Path | None = None

    def attach(self) -> str:
        self.loop = run("losetup", "-f", "--show", str(self.path)).stdout.strip()
        run("udevadm", "settle", "-t", "30", check=False)
        return self.loop

    def mount(self, mountpoint: Path, *, read_only: bool = False) -> Path:
        assert self.loop, "attach first"
        mountpoint.mkdir(parents=True, exist_ok=True)
        opts = ["-o", "ro"] if read_only else []
        if self.fstype == "ext4":
            run("mount", "-t", "ext4", *opts, self.loop, str(mountpoint))
        elif self.fstype == "exfat":
            run("mount.exfat-fuse", *opts, self.loop, str(mountpoint))
        elif self.fstype == "ntfs":
            run("ntfs-3g", *opts, self.loop, str(mountpoint))
        elif self.fstype == "fat32":  # FUSE (no vfat module here); fsname: the mount table names the device
            run("fusefat", "-o", f"{'ro' if read_only else 'rw+'},fsname={self.loop}", self.loop, str(mountpoint))
        self.mountpoint = mountpoint
        self.owner.mounts.append(mountpoint)
        return mountpoint

    def umount(self, *, lazy: bool = False) -> None:
        if self.mountpoint is not None:
            run("umount", *(["-l"] if lazy else []), str(self.mountpoint))
            self.mountpoint = None

    def detach(self) -> None:
        if self.loop is not None:
            run("losetup", "-d", self.loop, check=False)
            self.loop = None

    def unplug(self) -> None:
        self.umount()
        self.detach()


class Drives:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.images: list[Image] = []
        self.mounts: list[Path] = []
        self.n = 0

    def make(self, fstype: str = "ext4", *, size_mb: int = 64, uuid: str | None = None, label: str = "NASKAH") -> Image:
        require_root()
        tools = {"ext4": "mkfs.ext4", "exfat": "mkfs.exfat", "ntfs": "mkfs.ntfs", "fat32": "mkfs.fat"}
        require_tool(tools[fstype])
        require_tool({"ext4": "mount", "exfat": "mount.exfat-fuse", "ntfs": "ntfs-3g", "fat32": "fusefat"}[fstype])
        self.n += 1
        img = self.folder / f"drive{self.n}.{fstype}.img"
        with open(img, "wb") as f:
            f.truncate(size_mb << 20)
        if fstype == "ext4":
            run("mkfs.ext4", "-q", "-F", "-L", label, "-U", uuid or str(uuidlib.uuid4()), "-E", "lazy_itable_init=0,lazy_journal_init=0", str(img))
        elif fstype == "exfat":
            run("mkfs.exfat", "-L", label, *(["-i", uuid.replace("-", "")] if uuid else []), str(img))
        elif fstype == "fat32":
            run("mkfs.fat", "-F", "32", "-n", label, *(["-i", uuid.replace("-", "")] if uuid else []), str(img))
        else:
            run("mkfs.ntfs", "-q", "-F", "-f", "-L", label, str(img))
        image = Image(self, img, fstype)
        self.images.append(image)
        return image

    def cleanup(self) -> None:
        for mp in reversed(self.mounts):
            with contextlib.suppress(Exception):
                if os.path.ismount(mp):
                    run("umount", "-l", str(mp), check=False)
        # Only loop devices still backed by our own images: a number we detached may
        # belong to someone else's test by now.
        for image in self.images:
            for line in run("losetup", "-j", str(image.path), check=False).stdout.splitlines():
                run("losetup", "-d", line.split(":", 1)[0], check=False)


@pytest.fixture
def udevd() -> None:
    ensure_udevd()


@pytest.fixture
def drives(tmp_path: Path, udevd: None) -> Iterator[Drives]:
    d = Drives(tmp_path / "images")
    d.folder.mkdir()
    try:
        yield d
    finally:
        d.cleanup()


def tree_hashes(top: Path) -> dict[str, str]:
    """SHA-256 of every file below ``top``, but an installation's own root markers."""
    import hashlib

    from naskahd.config import ROOT_MARKER, ROOT_OWNER

    return {str(p.relative_to(top)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(top.rglob("*"))
            if p.is_file() and p.name not in (ROOT_MARKER, ROOT_OWNER)}




UDISKSD = "/usr/libexec/udisks2/udisksd"
POLKITD = "/usr/lib/polkit-1/polkitd"


@pytest.fixture
def udisks(tmp_path: Path, udevd: None) -> Iterator[dict[str, str]]:
    """A real udisksd (with polkitd) on a private system bus of its own, never the
    machine's: the environment that points udisksctl (and the daemon) at it."""
    require_tool("dbus-daemon")
    require_tool("udisksctl")
    for binary in (UDISKSD, POLKITD):
        require(os.path.exists(binary), f"{binary} is not installed (Debian packages udisks2, polkitd)")
    folder = tmp_path / "bus"
    folder.mkdir()
    socket = folder / "socket"
    conf = Path("/usr/share/dbus-1/system.conf").read_text()
    conf = (conf.replace("<user>messagebus</user>", "")
            .replace("<includedir>system.d</includedir>", "<includedir>/usr/share/dbus-1/system.d</includedir>"))
    import re

    conf = re.sub(r"<listen>.*?</listen>", f"<listen>unix:path={socket}</listen>", conf)
    conf = re.sub(r"<(pidfile|servicehelper)>.*?</\1>", "", conf)
    conf = re.sub(r"<include if_selinux_enabled[^>]*>.*?</include>", "", conf)
    (folder / "bus.conf").write_text(conf)
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={socket}"}
    bus = subprocess.Popen(["dbus-daemon", f"--config-file={folder / 'bus.conf'}", "--nofork", "--nopidfile"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [bus]
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            assert time.monotonic() < deadline and bus.poll() is None, "dbus-daemon did not start"
            time.sleep(0.05)
        log = open(folder / "udisks.log", "wb")
        procs.append(subprocess.Popen([POLKITD, "--no-debug"], env=env, stdout=log, stderr=log))
        procs.append(subprocess.Popen([UDISKSD], env=env, stdout=log, stderr=log))
        deadline = time.monotonic() + 30
        while subprocess.run(["udisksctl", "status"], env=env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline and procs[-1].poll() is None, (folder / "udisks.log").read_text()[-2000:]
            time.sleep(0.2)
        yield {"DBUS_SYSTEM_BUS_ADDRESS": env["DBUS_SYSTEM_BUS_ADDRESS"]}
    finally:
        for proc in reversed(procs):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            if proc.poll() is None:
                proc.kill()
