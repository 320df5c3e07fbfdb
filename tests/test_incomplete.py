"""Issue 8 with the real daemon: a scanner that pauses between pages is never taken early."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import pytest

from conftest import Daemon

pytestmark = [pytest.mark.system, pytest.mark.slow]


def make_pdf(pages: int = 3) -> bytes:
    from pypdf import PdfWriter

    w = PdfWriter()
    for _ in range(pages):
        w.add_blank_page(width=595, height=842)
    w.add_metadata({"/Title": os.urandom(8).hex()})
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def make_image(fmt: str) -> bytes:
    from PIL import Image

    img = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def write_paced(path: Path, pieces: list[bytes], pause: float) -> None:
    """One open file, written piece by piece with pauses, as a scanner writes page by page."""
    with open(path, "wb") as f:
        for i, piece in enumerate(pieces):
            f.write(piece)
            f.flush()
            os.fsync(f.fileno())
            if i < len(pieces) - 1:
                time.sleep(pause)


def split_before_end(data: bytes, marker: bytes, parts: int = 3) -> list[bytes]:
    """Split so that ``marker`` appears only in the last piece."""
    cut = data.rindex(marker)
    head = data[:cut]
    step = max(1, len(head) // (parts - 1))
    pieces = [head[i : i + step] for i in range(0, len(head), step)]
    return pieces + [data[cut:]]


@pytest.mark.parametrize(
    ("kind", "marker"),
    [("pdf", b"%%EOF"), ("jpeg", b"\xff\xd9"), ("png", b"IEND")],
)
def test_a_scan_written_with_pauses_longer_than_settle_is_filed_once_complete(daemon_factory, kind: str, marker: bytes) -> None:
    d: Daemon = daemon_factory(settle=1.0)
    data = make_pdf() if kind == "pdf" else make_image(kind.upper())
    pieces = split_before_end(data, marker)
    write_paced(d.drop / "masuk" / f"paced.{kind}", pieces, pause=5.0)
    ev = d.wait_event("document.registered", timeout=30)
    time.sleep(1.5)
    (doc,) = d.documents()
    assert doc["sha256"] == hashlib.sha256(data).hexdigest(), "taken before the scanner finished"
    assert doc["detected_type"] == kind
    assert ev["detected_type"] == kind


def test_random_bytes_named_pdf_are_filed_and_flagged(daemon_factory) -> None:
    d = daemon_factory(settle=0.5)
    (d.drop / "masuk" / "not-really.pdf").write_bytes(os.urandom(5000))
    d.wait_event("document.registered", timeout=15)
    (doc,) = d.documents()
    assert doc["detected_type"] is None and doc["original_name"] == "not-really.pdf"


def test_a_pdf_truncated_for_good_goes_to_review_with_the_reason(daemon_factory) -> None:
    d = daemon_factory(settle=0.5, incomplete_after=4)
    data = make_pdf()
    (d.drop / "masuk" / "truncated.pdf").write_bytes(data[: len(data) // 2])
    ev = d.wait_event("document.review", timeout=20)
    assert "incomplete" in ev["reason"]
    assert d.documents() == []
    assert (d.drop / "tinjau" / "truncated.pdf").read_bytes() == data[: len(data) // 2]
    st = d.status()
    assert any("truncated.pdf" in p and "incomplete" in p for p in st["problems"])


def test_a_damaged_but_whole_pdf_is_filed_and_registered_as_repaired(daemon_factory) -> None:
    """Issue 16: a PDF whose startxref points a few bytes off (an editor re-encoded it) is
    whole: filed, with the register's detected_type saying it was opened by repair."""
    from test_complete_readers import startxref_off

    d = daemon_factory(settle=0.3)
    (d.drop / "masuk" / "edited.pdf").write_bytes(startxref_off(3))
    d.wait_event("document.registered", timeout=30)
    ev = d.wait_event("document.repaired")
    assert ev["path"] == "masuk/edited.pdf" and ev["note"]
    (doc,) = d.documents()
    assert doc["detected_type"] == "pdf-repaired"
