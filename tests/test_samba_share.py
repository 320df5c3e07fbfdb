"""The shipped Samba share (etc/samba/naskahd.conf) on a real smbd: staff upload with the real
smbclient into masuk/ and dikecualikan/ and both are filed; litter is vetoed; nothing
outside the drop folder (the archive, the state) is reachable through it."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT, Daemon, require, require_root, require_tool
from sambaserver import SambaServer, _which, missing_tools, shipped_share, smb_put
from test_incomplete import make_pdf

pytestmark = [pytest.mark.system, pytest.mark.slow]
SHIPPED = ROOT / "etc" / "samba" / "naskahd.conf"


@pytest.fixture
def officer(tmp_path: Path) -> str:
    keygen = require_tool("age-keygen")
    key = tmp_path / "officer.key"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    return next(line.split(": ")[1] for line in key.read_text().splitlines() if line.startswith("# public key"))


@pytest.fixture
def share(daemon_factory, officer: str, tmp_path: Path) -> Iterator[tuple[Daemon, SambaServer]]:
    missing = missing_tools()
    require(not missing, f"{', '.join(missing)} not installed (Debian: samba, smbclient)")
    require_root()
    d = daemon_factory(settle=1.0, recipients=[officer])
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    section = shipped_share(SHIPPED, d.drop, user, group)
    with SambaServer(d.drop, tmp_path / "samba", share_section=section) as srv:
        yield d, srv


def smbclient(srv: SambaServer, command: str) -> subprocess.CompletedProcess[str]:
    tool = _which("smbclient")
    assert tool is not None
    return subprocess.run([tool, srv.unc, "-p", str(srv.port), "-U", f"{srv.user}%{srv.password}", "-m", "SMB3", "-c", command],
                          capture_output=True, text=True, timeout=60)


def test_the_shipped_section_is_what_the_server_runs() -> None:
    text = SHIPPED.read_text()
    assert "[naskah]" in text and "path = /srv/naskahd/drop" in text
    for line in ("force user = naskahd", "force group = naskahd-staff", "valid users = @naskahd-staff", "veto files =", "follow symlinks = no", "wide links = no"):
        assert line in text, line
    assert "archive" not in text.split("[naskah]", 1)[1].split("path =", 1)[1].splitlines()[0]


def test_uploads_into_masuk_and_dikecualikan_are_filed(share, tmp_path: Path) -> None:
    d, srv = share
    assert srv.share == "naskah"
    inbound, exempt = tmp_path / "surat masuk.pdf", tmp_path / "rahasia.pdf"
    inbound.write_bytes(make_pdf(pages=2))
    exempt.write_bytes(make_pdf(pages=3))
    smb_put(srv, "masuk/surat masuk.pdf", inbound)
    smb_put(srv, "dikecualikan/rahasia.pdf", exempt)
    d.wait_event("document.registered", count=2, timeout=30)
    docs = {doc["category"]: doc for doc in d.documents()}
    assert docs["inbound"]["sha256"] == hashlib.sha256(inbound.read_bytes()).hexdigest()
    assert docs["exempt"]["size"] == len(exempt.read_bytes())  # its sha256 is a keyed tag (issue 15)
    assert docs["exempt"]["original_name"] is None and docs["exempt"]["archive_path"].endswith(".pdf.age")
    assert not [p for sub in ("masuk", "dikecualikan") for p in (d.drop / sub).rglob("*")], "a filed scan was left in the drop folder"


def test_litter_is_vetoed_and_nothing_outside_the_drop_folder_is_reachable(share, tmp_path: Path) -> None:
    d, srv = share
    litter = tmp_path / "Thumbs.db"
    litter.write_bytes(b"thumbnail cache")
    with pytest.raises(OSError, match="NT_STATUS_"):
        smb_put(srv, "masuk/Thumbs.db", litter)
    assert not (d.drop / "masuk" / "Thumbs.db").exists()
    (d.archive / "secret.txt").write_text("archive only")
    os.symlink(d.archive, d.drop / "masuk" / "to-archive")
    out = smbclient(srv, "get masuk/to-archive/secret.txt /dev/null")
    assert "NT_STATUS_" in out.stdout + out.stderr, out
    out = smbclient(srv, "cd ..; ls")
    assert "state" not in out.stdout and "archive" not in out.stdout, out
