"""`naskahd init` without --root: a new installation in the folders a configuration file names
(the service's deployment step, after systemd-tmpfiles made the folders)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import naskahd_cmd


def test_init_marks_the_folders_of_the_configuration(tmp_path: Path) -> None:
    cfg = tmp_path / "etc" / "naskahd.toml"
    cfg.parent.mkdir()
    cfg.write_text(f'[paths]\ndrop = "{tmp_path}/srv/drop"\narchive = "{tmp_path}/srv/archive"\nstate = "{tmp_path}/lib"\n')
    before = subprocess.run(naskahd_cmd("--config", str(cfg), "status"), capture_output=True, text=True)
    assert before.returncode == 3 and "naskahd init" in before.stdout, before  # status names the missing installation
    out = subprocess.run(naskahd_cmd("--config", str(cfg), "init"), capture_output=True, text=True)
    assert out.returncode == 0, out
    for root in ("srv/drop", "srv/archive", "lib"):
        assert (tmp_path / root / ".naskahd-root").is_file(), root
    assert (tmp_path / "lib" / "register.sqlite3").is_file() and (tmp_path / "srv/drop/masuk").is_dir()
    after = subprocess.run(naskahd_cmd("--config", str(cfg), "status"), capture_output=True, text=True)
    assert after.returncode == 3 and "naskahd init" not in after.stdout, after  # an installation whose daemon is not running
    again = subprocess.run(naskahd_cmd("--config", str(cfg), "init"), capture_output=True, text=True)
    assert again.returncode == 0  # the markers stay: never a second installation over the first
    bad = subprocess.run(naskahd_cmd("--config", str(cfg), "init", "--recipient", "age1x"), capture_output=True, text=True)
    assert bad.returncode == 2 and "--root" in bad.stderr
