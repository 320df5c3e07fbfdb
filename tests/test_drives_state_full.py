"""A full state disk while a sync stages the register snapshot is the host's problem, said so.

The register snapshot for the drive (naskah/.naskahd/register.sqlite3) is made in the
state folder first (SQLite's online backup API writes a file). When that disk is full
the sync must not say "drive ... is full": the drive has room, the computer does not.
The state folder is a small loop-mounted ext4 filled to its last block (as in
test_state_disk_full.py); the drive a real loop-mounted ext4.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import Daemon, naskahd_cmd, wait_until
from drives_fixtures import drives, udevd  # noqa: F401  (fixtures)
from test_state_disk_full import fill, small_state  # noqa: F401  (fixture)

pytestmark = pytest.mark.system


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(naskahd_cmd("--config", str(cfg), *args), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LANG": "C.UTF-8", "LANGUAGE": "en"})


def add_documents(cfg_path: Path, n: int) -> None:
    """``n`` more filed documents, straight into the register and the archive (their filing
    is not what this test is about): a register of a few MB, as an office's is."""
    import datetime as dt
    import hashlib

    from sqlalchemy import func, insert, select

    from naskahd import config
    from naskahd.register import Document, open_register

    cfg = config.load(str(cfg_path))
    sessions = open_register(cfg.database_url)
    folder = cfg.archive / "inbound" / "2025" / "01"
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(1, n + 1):
        name = f"{i:04d}-M-2025_old {i}.pdf"
        data = f"%PDF-1.4 old letter {i}\n".encode() * 8
        (folder / name).write_bytes(data)
        rows.append(dict(agenda=f"{i:04d}/M/2025", category="inbound", year=2025, number=i, original_name=f"old {i}.pdf",
                         source_relpath=f"masuk/old {i}.pdf".encode(), archive_path=f"inbound/2025/01/{name}", size=len(data),
                         sha256=hashlib.sha256(data).hexdigest(), received_at=now, state="filed"))
    with sessions.begin() as s:
        s.execute(insert(Document.__table__), rows)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == n + 3
    sessions.kw["bind"].dispose()  # no file of the state disk left open here: it is unmounted at the end


def test_a_full_state_disk_during_the_snapshot_is_reported_as_the_state_disks(small_state: Path, drives, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = Daemon(small_state.parent, small_state).start()
    try:
        for i in range(3):
            (d.drop / "masuk" / f"surat {i}.pdf").write_bytes(os.urandom(5000))
        wait_until(lambda: len(d.documents()) == 3, 60, "filed", d)
    finally:
        d.stop()
    add_documents(small_state, 6000)
    image = drives.make("ext4")
    image.attach()
    mp = image.mount(tmp_path / "mnt")
    assert cli(small_state, "drive", "register", str(mp), "--name", "safe1").returncode == 0
    out = cli(small_state, "sync", "--drive", "safe1")
    assert out.returncode == 0, out.stdout + out.stderr
    # The drive lost its snapshot (or never got one): the next sync makes one, on a full state disk.
    snapshot = mp / "naskah" / ".naskahd" / "register.sqlite3"
    snapshot.unlink()
    # The state disk full but for 2.5 MiB: enough for the register to be used (it needs 1 MiB
    # available), not for a snapshot of it (as big as the register; root may use the blocks
    # ext4 reserves, hence f_bfree).
    filler = fill(d.state)
    os.truncate(filler, filler.stat().st_size - (5 << 19))
    register = d.state / "register.sqlite3"
    st = os.statvfs(d.state)
    assert st.f_bavail * st.f_frsize >= 1 << 20 and st.f_bfree * st.f_frsize < register.stat().st_size, (st, register.stat())
    out = cli(small_state, "sync", "--drive", "safe1")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "drive safe1 is full" not in out.stdout, out.stdout
    assert "state folder" in out.stdout and str(d.state) in out.stdout and "is full" in out.stdout, out.stdout + out.stderr
    assert "(not the drive)" in out.stdout, out.stdout
    assert not snapshot.exists()
    assert not list(d.state.glob(".snapshot-*")), "the staging folder was left behind"
    # Space back: the same command makes the snapshot.
    filler.unlink()
    out = cli(small_state, "sync", "--drive", "safe1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert snapshot.exists()
