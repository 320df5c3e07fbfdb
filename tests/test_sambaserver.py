"""The private Samba harness works, and naskahd.samba sees a client's file still open for writing.

System tests: a real smbd on loopback, the real smbclient CLI, smbprotocol as the paced
"scanner". Skipped when the tools are missing, failed instead under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import require, require_root
from naskahd import complete, samba
from sambaserver import SambaServer, missing_tools, smb_put, smb_write_paced


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SambaServer]:
    missing = missing_tools()
    require(not missing, f"{', '.join(missing)} not installed (Debian: samba, smbclient)")
    require_root()  # smbd switches to the connecting user's uid
    try:
        import smbclient  # noqa: F401 - smbprotocol
    except ImportError:
        require(False, "the smbprotocol package is not installed (pyproject [test])")
    srv = SambaServer(tmp_path / "share", tmp_path / "samba")
    with srv:
        yield srv
    assert_stopped(srv)


def assert_stopped(srv: SambaServer) -> None:
    """No smbd of this server is left: none has its private smb.conf on its command line."""
    conf = str(srv.conf).encode()
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if conf in cmdline:
            left.append(pid)
    assert left == [], f"smbd processes left behind: {left}"


@pytest.mark.system
def test_smbclient_put_lands_in_the_share(server: SambaServer, tmp_path: Path) -> None:
    local = tmp_path / "surat.pdf"
    local.write_bytes(b"%PDF-1.4\n" + os.urandom(50_000))
    smb_put(server, "surat.pdf", local)
    assert (server.share_dir / "surat.pdf").read_bytes() == local.read_bytes()
    (server.share_dir / "masuk").mkdir()
    smb_put(server, "masuk/tamu.bin", local, guest=True)
    assert (server.share_dir / "masuk" / "tamu.bin").read_bytes() == local.read_bytes()


@pytest.mark.system
def test_a_paced_write_grows_on_disk_between_pauses_through_one_open_handle(server: SambaServer) -> None:
    chunks = [os.urandom(10_000), os.urandom(20_000), os.urandom(5_000), os.urandom(1)]
    target = server.share_dir / "scan.bin"
    seen: list[tuple[int, int, float]] = []

    def after(i: int) -> None:
        seen.append((i, target.stat().st_size, time.monotonic()))

    smb_write_paced(server, "scan.bin", chunks, pause=0.3, after_chunk=after)
    sizes = [size for _, size, _ in seen]
    assert sizes == [10_000, 30_000, 35_000, 35_001], "each piece is on disk before the pause"
    gaps = [b[2] - a[2] for a, b in zip(seen, seen[1:])]
    assert all(g >= 0.25 for g in gaps), gaps
    assert target.read_bytes() == b"".join(chunks)


@pytest.mark.system
def test_samba_open_for_write_while_a_client_writes_and_not_after(server: SambaServer) -> None:
    target = server.share_dir / "scan.pdf"
    status = samba.SmbStatus(str(server.conf), ttl=0.0)
    during: list[tuple[bool | None, bool | None, bool | None]] = []

    def after(i: int) -> None:
        during.append((samba.probe_lease(target), status.open_for_write(target), samba.open_for_write(target)))

    smb_write_paced(server, "scan.pdf", [b"%PDF-1.7\n", b"1 0 obj\n<<>>\nendobj\n"], pause=0.2, after_chunk=after)
    assert during == [(True, True, True)] * 2
    deadline = time.monotonic() + 5  # smbd closes the descriptor when the SMB CLOSE arrives
    while samba.open_for_write(target) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert samba.probe_lease(target) is False
    assert status.open_for_write(target) is False
    assert samba.open_for_write(target) is False


@pytest.mark.system
def test_a_pdf_written_page_by_page_over_smb_is_incomplete_until_its_end(server: SambaServer) -> None:
    from test_complete import scanner_pdf

    data = scanner_pdf(3)
    end = data.rindex(b"%%EOF")
    pieces = [data[: end // 3], data[end // 3 : 2 * end // 3], data[2 * end // 3 : end], data[end:]]
    target = server.share_dir / "paced.pdf"
    verdicts: list[complete.Completeness] = []
    smb_write_paced(server, "paced.pdf", pieces, pause=0.1, after_chunk=lambda i: verdicts.append(complete.check(target)))
    assert [v.complete for v in verdicts] == [False, False, False, True], verdicts
    assert all(v.kind == "pdf" for v in verdicts)


# -- the probe without Samba, and without root ---------------------------------------------------------
def test_probe_lease_sees_a_local_writer(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(b"%PDF-1.7\n")
    with open(path, "ab") as writer:
        assert samba.probe_lease(path) is True
        with open(path, "rb"):  # readers do not count
            assert samba.probe_lease(path) is True
        writer.write(b"more")
    assert samba.probe_lease(path) is False
    with open(path, "rb"):
        assert samba.probe_lease(path) is False
    assert samba.probe_lease(tmp_path / "missing") is None
    (tmp_path / "link").symlink_to(path)
    assert samba.probe_lease(tmp_path / "link") is None  # O_NOFOLLOW, like complete.check


@pytest.mark.system
def test_probe_lease_needs_no_privilege_for_files_the_daemon_user_owns() -> None:
    """As an unprivileged user: its own file answers True/False, someone else's None."""
    require_root()
    setpriv = shutil.which("setpriv")
    require(setpriv is not None, "setpriv (util-linux) is not installed")
    # pytest's tmp_path is private to root: 'nobody' needs a directory it can enter.
    top = Path(tempfile.mkdtemp(prefix="naskahd-lease-"))
    try:
        top.chmod(0o755)
        shutil.copy(Path(samba.__file__), top / "naskahd_samba_copy.py")  # stdlib only
        owned, foreign = top / "owned.pdf", top / "foreign.pdf"
        owned.write_bytes(b"x")
        foreign.write_bytes(b"x")
        os.chown(owned, 65534, 65534)
        # The interpreter must be usable by 'nobody': the system one.
        python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
        code = (f"import json, sys; sys.path.insert(0, {str(top)!r}); import naskahd_samba_copy as s; "
                "print(json.dumps([s.probe_lease(p) for p in sys.argv[1:]]))")

        def as_nobody() -> list[bool | None]:
            out = subprocess.run(
                [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", python, "-c", code,
                 str(owned), str(foreign)], capture_output=True, text=True, timeout=30,
            )
            assert out.returncode == 0, out.stderr
            return list(json.loads(out.stdout))

        with open(owned, "ab"):  # a writer of another uid (root here, smbd in production)
            assert as_nobody() == [True, None]
        assert as_nobody() == [False, None]
    finally:
        shutil.rmtree(top)


def test_parse_smbstatus_json() -> None:
    sample = {
        "open_files": {
            "/srv/drop/a.pdf": {"fileid": {"devid": 65024, "inode": 11, "extid": 0}, "opens": {
                "1/5": {"access_mask": {"READ_DATA": False, "WRITE_DATA": True, "APPEND_DATA": False}}}},
            "/srv/drop/b.pdf": {"fileid": {"devid": 65024, "inode": 12, "extid": 0}, "opens": {
                "1/6": {"access_mask": {"READ_DATA": True, "WRITE_DATA": False, "APPEND_DATA": False}}}},
            "/srv/drop/c.pdf": {"fileid": {"devid": 65024, "inode": 13, "extid": 0}, "opens": {
                "1/7": {"access_mask": {"READ_DATA": True}}, "2/1": {"access_mask": {"APPEND_DATA": True}}}},
        },
    }
    assert samba.parse_smbstatus(json.dumps(sample)) == {(65024, 11), (65024, 13)}
    assert samba.parse_smbstatus('{"timestamp": "x", "version": "4.17.12"}') == set()


def test_smbstatus_failure_is_none_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    status = samba.SmbStatus(ttl=0.5, backoff=60)
    monkeypatch.setattr(status, "_ask", lambda: calls.append(1))  # returns None: a failure
    path = tmp_path / "f"
    path.write_bytes(b"x")
    assert status.open_for_write(path) is None
    assert status.open_for_write(path) is None
    assert calls == [1], "a failed smbstatus is not retried before the back-off ends"
