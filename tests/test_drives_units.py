"""The udev rule and mount unit that `naskahd drive register` prints or installs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import naskahd_cmd, require_tool, write_config
from drives_fixtures import Drives, drives, udevd  # noqa: F401  (fixtures)
from naskahd.drives import units


@pytest.mark.parametrize("name", ["safe1", "off-site_2"])
@pytest.mark.parametrize("fstype", ["ext4", "exfat", "ntfs", "vfat"])
def test_the_mount_unit_passes_systemd_analyze_verify(tmp_path: Path, name: str, fstype: str) -> None:
    tool = require_tool("systemd-analyze")
    unit = tmp_path / units.mount_unit_name(name)
    text = units.mount_unit(name, "0A1B-2C3D", fstype)
    unit.write_text(text)
    assert f"Where=/media/naskahd/{name}\n" in text and "nofail" in text and "What=/dev/disk/by-uuid/0A1B-2C3D" in text
    out = subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
    escaped = subprocess.run(["systemd-escape", "--path", units.mountpoint(name)], capture_output=True, text=True, check=True)
    assert unit.name == escaped.stdout.strip() + ".mount"


@pytest.mark.system
def test_register_installs_units_and_the_rule_makes_udev_pull_in_the_mount(tmp_path: Path, drives: Drives) -> None:
    tool = require_tool("systemd-analyze")
    cfg = write_config(tmp_path / "n")
    image = drives.make("ext4")
    image.attach()
    mp = image.mount(tmp_path / "mnt")
    out = subprocess.run(naskahd_cmd("--config", str(cfg), "drive", "register", str(mp), "--name", "safe1",
                                     "--install-units", str(tmp_path / "units")), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    unit = tmp_path / "units" / "media-naskahd-safe1.mount"
    rule = tmp_path / "units" / "99-naskahd-safe1.rules"
    assert subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True, text=True).returncode == 0
    assert "Type=ext4" in unit.read_text()
    printed = subprocess.run(naskahd_cmd("--config", str(cfg), "drive", "forget", "safe1"), capture_output=True, text=True)
    assert printed.returncode == 0
    again = subprocess.run(naskahd_cmd("--config", str(cfg), "drive", "register", str(mp), "--name", "safe1"), capture_output=True, text=True)
    assert again.returncode == 0 and "[Mount]" in again.stdout and "SYSTEMD_WANTS" in again.stdout
    # The rule, given to the real udevd (runtime rules folder), tags the drive for systemd.
    image.unplug()
    runtime = Path("/run/udev/rules.d")
    runtime.mkdir(parents=True, exist_ok=True)
    installed = runtime / f"99-naskahd-test-{os.getpid()}.rules"
    installed.write_text(rule.read_text())
    try:
        subprocess.run(["udevadm", "control", "--reload"], check=True)
        loop = image.attach()
        props = subprocess.run(["udevadm", "info", "-q", "property", loop], capture_output=True, text=True, check=True).stdout
        assert "SYSTEMD_WANTS=media-naskahd-safe1.mount" in props
    finally:
        installed.unlink()
        subprocess.run(["udevadm", "control", "--reload"], check=False)
