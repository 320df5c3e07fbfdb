"""Issue 8 through a real Samba share: smbd on 127.0.0.1 exports the drop folder, real SMB
clients write scans into masuk/ with pauses longer than settle_seconds; nothing is taken early."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Daemon, require, require_root
from sambaserver import SambaServer, missing_tools, smb_put, smb_write_paced
from test_incomplete import make_pdf, split_before_end

pytestmark = [pytest.mark.system, pytest.mark.slow]


@pytest.fixture
def shared(daemon_factory, tmp_path: Path) -> Iterator[tuple[Daemon, SambaServer]]:
    missing = missing_tools()
    require(not missing, f"{', '.join(missing)} not installed (Debian: samba, smbclient)")
    require_root()
    try:
        import smbclient  # noqa: F401 - smbprotocol
    except ImportError:
        require(False, "the smbprotocol package is not installed (pyproject [test])")
    d = daemon_factory(settle=1.0)
    with SambaServer(d.drop, tmp_path / "samba") as srv:
        yield d, srv


def test_a_pdf_written_page_by_page_over_smb_is_filed_once_complete(shared) -> None:
    d, srv = shared
    data = make_pdf(pages=4)
    pieces = split_before_end(data, b"%%EOF", parts=4)
    seen_early = []

    def after(i: int) -> None:
        seen_early.append(bool(d.find("document.registered")))

    smb_write_paced(srv, "masuk/scan-smb.pdf", pieces, pause=5.0, after_chunk=after)
    d.wait_event("document.registered", timeout=30)
    assert not any(seen_early), "taken while the scanner was still writing"
    (doc,) = d.documents()
    assert doc["sha256"] == hashlib.sha256(data).hexdigest() and doc["detected_type"] == "pdf"


def test_an_unknown_format_written_with_pauses_over_smb_waits_while_the_handle_is_open(shared) -> None:
    """No content check can judge random bytes: the open-for-write probe carries it."""
    d, srv = shared
    pieces = [os.urandom(40_000) for _ in range(3)]
    seen_early = []

    def after(i: int) -> None:
        seen_early.append(bool(d.find("document.registered")))

    smb_write_paced(srv, "masuk/scan.bin", pieces, pause=4.0, after_chunk=after)
    d.wait_event("document.registered", timeout=30)
    assert not any(seen_early), "taken while the client still held it open"
    (doc,) = d.documents()
    assert doc["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_smbclient_put_is_filed(shared, tmp_path: Path) -> None:
    d, srv = shared
    local = tmp_path / "surat keluar.pdf"
    local.write_bytes(make_pdf(pages=2))
    smb_put(srv, "keluar/surat keluar.pdf", local)
    ev = d.wait_event("document.registered", timeout=20)
    assert ev["category"] == "outbound"
    (doc,) = d.documents()
    assert doc["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
