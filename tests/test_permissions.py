"""Permission failures, for real: the daemon runs as root without the capabilities that let
root bypass file permissions (setpriv drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and
CAP_FOWNER from its bounding set), so chmod binds it like any service user."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import Daemon, require_root, require_tool, wait_until, write_config

pytestmark = pytest.mark.system


@pytest.fixture
def capless(tmp_path: Path):
    require_root()
    setpriv = require_tool("setpriv")
    daemons: list[Daemon] = []

    def make(**kwargs) -> Daemon:
        cfg = write_config(tmp_path / "naskahd", **kwargs)
        d = Daemon(cfg.parent, cfg, prefix=[setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"])
        daemons.append(d)
        return d.start()

    yield make
    for d in daemons:
        d.stop()


def test_unreadable_file_is_reported_and_retried_by_itself(capless) -> None:
    d = capless(settle=0.3)
    path = d.drop / "masuk" / "locked.pdf"
    path.write_bytes(os.urandom(1000))
    path.chmod(0)
    ev = d.wait_event("document.failed", timeout=15)
    # The path, the user naskahd runs as and what to do (issue 18).
    assert ev["path"] == "masuk/locked.pdf" and "permission denied for the user root" in ev["error"]
    assert "chmod" in ev["error"]
    wait_until(lambda: any("locked.pdf" in p and "permission denied for the user root" in p
                           for p in d.status()["problems"]), 10, "status names it", d)
    shown = d.cli("status", env={"LANG": "id_ID.UTF-8"}).stdout
    assert "izin ditolak untuk pengguna root" in shown and "Permission denied" not in shown, shown
    assert d.cli("status").returncode == 1
    path.chmod(0o644)  # a person fixes it; no restart
    d.wait_event("document.registered", timeout=30)
    assert not path.exists()
    wait_until(lambda: d.status()["problems"] == [], 10, "problem cleared", d)


def test_source_that_cannot_be_removed_is_filed_once_and_shown(capless) -> None:
    d = capless(settle=0.3, rescan=1)
    folder = d.drop / "masuk" / "readonly"
    folder.mkdir()
    (folder / "stuck.pdf").write_bytes(b"a letter that cannot be removed")
    folder.chmod(0o555)
    try:
        d.wait_event("document.source_stuck", timeout=15)
        wait_until(lambda: any("stuck.pdf" in p and "remove it by hand" in p for p in d.status()["problems"]), 10, "status", d)
        # Several periodic rescans (every second here) see the file again; never filed twice.
        time.sleep(4)
        assert len(d.documents()) == 1
        assert d.find("document.duplicate") == [] and d.find("document.failed") == []
        d.stop()
        d.start()
        assert len(d.documents()) == 1
        st = d.status()
        assert any("stuck.pdf" in p for p in st["problems"])
        assert d.documents()[0]["state"] == "source_stuck"
    finally:
        folder.chmod(0o755)
    # Once a person fixes the permissions, the next look removes the source.
    wait_until(lambda: not (folder / "stuck.pdf").exists(), 30, "source removed after the fix", d)
    wait_until(lambda: d.documents()[0]["state"] == "filed", 10, "row filed", d)
    assert len(d.documents()) == 1
