"""The drives migration (0003) on a real register made by the release before it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from naskahd.register.db import current_revision, make_engine

from conftest import naskahd_cmd, write_config

DATA = Path(__file__).parent / "data"


def test_a_register_made_by_the_previous_release_is_upgraded_in_place(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "n")
    reg = tmp_path / "n" / "state" / "register.sqlite3"
    shutil.copy(DATA / "register-0001.sqlite3", reg)
    url = f"sqlite:///{reg}"
    assert current_revision(make_engine(url)) == "0001"
    # Any command that opens the register for writing migrates it: `drive list` does.
    out = subprocess.run(naskahd_cmd("--config", str(cfg), "drive", "list", "--json"), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    from naskahd.register.db import SCHEMA_REVISION

    assert current_revision(make_engine(url)) == SCHEMA_REVISION  # 0003 and every migration after it
    assert {"drives", "copies"} <= set(inspect(make_engine(url)).get_table_names())
    listed = subprocess.run(naskahd_cmd("--config", str(cfg), "list", "--json"), capture_output=True, text=True, check=True)
    assert [d["agenda"] for d in __import__("json").loads(listed.stdout)] == ["0001/M/2026", "0001/K/2026"]
