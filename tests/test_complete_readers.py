"""Issue 16: take every whole scan that a PDF or image reader opens, and never a cut one.

The corpus is made here from real writers (pypdf, Pillow, qpdf, reportlab, img2pdf,
Ghostscript) and
from the damaged-but-whole variants real producers write (bytes after ``%%EOF``, offsets
shifted, ``startxref`` a few bytes off, a ``/Prev`` loop, junk in the trailer, a sync-flushed
xref stream, junk before ``%PDF-``; a JPEG with bytes after EOI or junk between segments, a
PNG with a line feed after IEND, a TIFF whose SubIFDs are reached twice).

The oracle: every whole PDF that pypdf (``strict=False``) and ``qpdf --check`` open is
complete; no strict prefix of a whole file is, except a real earlier revision ending at an
earlier ``%%EOF`` and cuts that removed only what follows the end marker (white-space,
padding, the junk readers skip). Each cut point is judged through ``check_fd``.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

import pdfs
from conftest import require_tool
from naskahd.complete import check, check_fd
from test_complete import (
    cut_points, encode, hand_incremental, image, incremental_pdf, multipage_tiff, pypdf_compressed,
    pypdf_pdf, revision_ends, scanner_pdf,
)


# -- damaged but whole: the classes of issue 16 ------------------------------------------------
def after_eof(data: bytes, extra: bytes) -> bytes:
    return data + extra


def shifted_offsets() -> bytes:
    """An editor re-encoded the binary comment as UTF-8: every offset after it is 4 bytes short."""
    data = pdfs.build(pdfs.page_tree(2))
    assert data.startswith(pdfs.HEADER)
    return data.replace(b"%\xe2\xe3\xcf\xd3", "%\xe2\xe3\xcf\xd3".encode("utf-8"), 1)


def startxref_off(by: int) -> bytes:
    data = pdfs.build(pdfs.page_tree(2))
    at = pdfs.startxref(data)
    return data.replace(b"startxref\n%d\n" % at, b"startxref\n%d\n" % (at + by))


def subsection_from_one() -> bytes:
    data = pdfs.build(pdfs.page_tree(2))
    return data.replace(b"xref\n0 7\n", b"xref\n1 7\n", 1)


def cr_only() -> bytes:
    return pdfs.build(pdfs.page_tree(2), eol=b" \r").replace(b"\n", b"\r")


def prev_loop() -> bytes:
    base = pdfs.build(pdfs.page_tree())
    update = pdfs.build({1: b"<< /Type /Catalog /Pages 2 0 R >>"}, base=base, size=7)
    return update.replace(b"/Prev %d" % pdfs.startxref(base), b"/Prev %d" % pdfs.startxref(update), 1)


def trailer_junk() -> bytes:
    return pdfs.build(pdfs.page_tree(2)).replace(b"trailer\n<< /Size 7", b"trailer\n<< /Size 7 junk", 1)


def xref_trailing_spaces() -> bytes:
    data = pdfs.build(pdfs.page_tree(2), eol=b"\r\n")
    return data.replace(b" n\r\n", b" n  \r\n")  # offsets before the table are unchanged


def xref_stream_self_entry_wrong() -> bytes:
    data = pdfs.build(pdfs.page_tree(2), xref="stream", predictor=None)
    at = pdfs.startxref(data)
    start = data.index(b"stream\n", at) + 7
    stop = data.index(b"\nendstream", start)
    rows = bytearray(zlib.decompress(data[start:stop]))
    own = rows.rindex(bytes([1]) + at.to_bytes(4, "big"))
    rows[own + 1 : own + 5] = (at - 7).to_bytes(4, "big")
    return _replace_stream(data, start, stop, zlib.compress(bytes(rows)))


def sync_flushed_xref_stream() -> bytes:
    """Acrobat's incremental save: the xref stream's Flate data ends in a sync flush, no final block."""
    data = pdfs.build(pdfs.page_tree(2), xref="stream", predictor=None)
    start = data.index(b"stream\n", pdfs.startxref(data)) + 7
    stop = data.index(b"\nendstream", start)
    z = zlib.compressobj()
    flushed = z.compress(zlib.decompress(data[start:stop])) + z.flush(zlib.Z_SYNC_FLUSH)
    assert flushed.endswith(b"\x00\x00\xff\xff")
    return _replace_stream(data, start, stop, flushed)


def _replace_stream(data: bytes, start: int, stop: int, new: bytes) -> bytes:
    head = data[:start].rsplit(b"/Length %d" % (stop - start), 1)
    assert len(head) == 2
    return head[0] + b"/Length %d" % len(new) + head[1] + new + data[stop:]


def junk_before_header(junk: bytes) -> bytes:
    return junk + pdfs.build(pdfs.page_tree(2))


def qpdf_rewrite(data: bytes, *args: str) -> bytes:
    qpdf = require_tool("qpdf")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf"
        src.write_bytes(data)
        out = subprocess.run([qpdf, *args, str(src), str(dst)], capture_output=True, timeout=60)
        assert out.returncode in (0, 3), out.stderr
        return dst.read_bytes()


def reportlab_pdf() -> bytes:
    canvas = pytest.importorskip("reportlab.pdfgen.canvas", reason="reportlab is a test dependency (pyproject [test])")
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for k in range(2):
        c.drawString(72, 720, f"Surat nomor {k}")
        c.showPage()
    c.save()
    return buf.getvalue()


def img2pdf_pdf() -> bytes:
    img2pdf = pytest.importorskip("img2pdf", reason="img2pdf is a test dependency (pyproject [test])")
    return img2pdf.convert([encode("JPEG"), encode("JPEG")])


GS_PAGES = b"""%!PS
/Helvetica findfont 14 scalefont setfont
72 720 moveto (Surat nomor 1) show showpage
72 720 moveto (Surat nomor 2) show showpage
"""


def ghostscript_pdf(*options: str, source: bytes | None = None) -> bytes:
    """Ghostscript's pdfwrite, from PostScript or re-distilling a PDF (what many scanner
    drivers and print-to-PDF paths run)."""
    gs = require_tool("gs")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / ("in.pdf" if source else "in.ps"), Path(tmp) / "out.pdf"
        src.write_bytes(source or GS_PAGES)
        out = subprocess.run([gs, "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite", *options,
                              f"-sOutputFile={dst}", str(src)], capture_output=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return dst.read_bytes()


WHOLE_PDFS = {
    "pypdf": lambda: pypdf_pdf(3),
    "pypdf-compressed": pypdf_compressed,
    "pillow-scanner": lambda: scanner_pdf(2),
    "reportlab": reportlab_pdf,
    "img2pdf": img2pdf_pdf,
    "ghostscript": ghostscript_pdf,
    "ghostscript-pdf-1.4": lambda: ghostscript_pdf("-dCompatibilityLevel=1.4"),
    "ghostscript-from-scan": lambda: ghostscript_pdf(source=scanner_pdf(2)),
    "qpdf-object-streams": lambda: qpdf_rewrite(scanner_pdf(2), "--object-streams=generate"),
    "qpdf-linearized": lambda: qpdf_rewrite(pypdf_pdf(3), "--linearize"),
    "qpdf-qdf": lambda: qpdf_rewrite(pypdf_compressed(2), "--qdf"),
    "hand-incremental": hand_incremental,
    "pypdf-incremental": lambda: incremental_pdf()[1],
    # damaged, whole: what readers open and today's check refused
    "ctrl-z-after-eof": lambda: after_eof(pdfs.build(pdfs.page_tree(2)), b"\x1a"),
    "junk-line-after-eof": lambda: after_eof(pdfs.build(pdfs.page_tree(2)), b"this is not PDF\n"),
    "crlf-after-eof": lambda: after_eof(pdfs.build(pdfs.page_tree(2))[:-1], b"\r\n"),
    "20k-nul-after-eof": lambda: after_eof(pdfs.build(pdfs.page_tree(2)), bytes(20_000)),
    "duplicate-eof": lambda: after_eof(pdfs.build(pdfs.page_tree(2)), b"%%EOF\n"),
    "shifted-offsets": shifted_offsets,
    "startxref-3-late": lambda: startxref_off(3),
    "startxref-2-early": lambda: startxref_off(-2),
    "subsection-from-1": subsection_from_one,
    "cr-only-line-ends": cr_only,
    "prev-loop": prev_loop,
    "trailer-junk": trailer_junk,
    "xref-trailing-spaces": xref_trailing_spaces,
    "xref-stream-self-entry-wrong": xref_stream_self_entry_wrong,
    "xref-stream-sync-flush": sync_flushed_xref_stream,
    "bom-before-header": lambda: junk_before_header(b"\xef\xbb\xbf"),
    "junk-before-header": lambda: junk_before_header(b"garbage\r\n"),
}


def pypdf_opens(data: bytes) -> bool:
    """pypdf, non-strict as readers are: the catalog and every page."""
    from pypdf import PdfReader

    try:
        r = PdfReader(io.BytesIO(data), strict=False)
        if r.is_encrypted:
            r.decrypt("")
        return len(r.pages) > 0 and all(p.mediabox is not None for p in r.pages)
    except Exception:  # noqa: BLE001 - any failure: not opened
        return False


def qpdf_opens(data: bytes, tmp_path: Path) -> bool:
    qpdf = require_tool("qpdf")
    path = tmp_path / "oracle.pdf"
    path.write_bytes(data)
    proc = subprocess.run([qpdf, "--check", str(path)], capture_output=True, timeout=60)
    return proc.returncode in (0, 3)  # 3: opened, with warnings (a repaired file)


def pdf_end(data: bytes) -> int:
    """Where the last %%EOF ends: what follows it may be cut off without harm."""
    return data.rindex(b"%%EOF") + 5


@pytest.fixture
def fd_of(tmp_path: Path):
    fds: list[int] = []

    def put(data: bytes) -> int:
        path = tmp_path / f"f{len(fds)}"
        path.write_bytes(data)
        fds.append(os.open(path, os.O_RDONLY))
        return fds[-1]

    yield put
    for fd in fds:
        os.close(fd)


@pytest.mark.parametrize("name", sorted(WHOLE_PDFS))
def test_whole_pdf_that_readers_open_is_taken_and_no_cut_of_it_is(name: str, fd_of, tmp_path: Path) -> None:
    data = WHOLE_PDFS[name]()
    by_pypdf, by_qpdf = pypdf_opens(data), qpdf_opens(data, tmp_path)
    assert by_pypdf or by_qpdf, f"{name}: a reader must open the corpus file"
    fd = fd_of(data)
    verdict = check_fd(fd, len(data))
    assert verdict.kind == "pdf", verdict
    if by_pypdf and by_qpdf:
        assert verdict.complete, verdict
    assert name not in ONE_READER or not (by_pypdf and by_qpdf), f"{name}: both readers open it now"
    ends, end = revision_ends(data), pdf_end(data)
    # Cuts inside junk before %PDF- hold no sign of a PDF yet: of no known type, unknowable.
    header = data.index(b"%PDF-") if not data.startswith(b"\xef\xbb\xbf") else 0
    wrongly = [c for c in cut_points(len(data)) if header < c < end and c not in ends and check_fd(fd, c).complete]
    assert wrongly == [], f"{name}: cut points judged complete: {wrongly[:10]}"
    assert all(check_fd(fd, c).complete for c in range(end, len(data), max(1, (len(data) - end) // 50)))


ONE_READER = {"subsection-from-1"}  # pypdf (non-strict) opens it, qpdf --check does not; the check takes it
DAMAGED = {"shifted-offsets", "startxref-3-late", "startxref-2-early", "subsection-from-1",
           "xref-stream-self-entry-wrong", "bom-before-header", "junk-before-header"}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_damaged_pdf_is_taken_with_a_note_a_person_can_read(name: str, fd_of) -> None:
    data = WHOLE_PDFS[name]()
    verdict = check_fd(fd_of(data), len(data))
    assert verdict.complete and verdict.repaired and verdict.detected_type == "pdf-repaired", verdict
    assert "damaged PDF, opened by repair" in verdict.reason, verdict.reason


def test_an_undamaged_pdf_has_no_note(fd_of) -> None:
    data = pypdf_pdf(2)
    verdict = check_fd(fd_of(data), len(data))
    assert verdict.complete and not verdict.repaired and verdict.detected_type == "pdf"


def test_a_damaged_pdf_with_a_hole_in_its_text_is_not_repaired_into_complete(fd_of) -> None:
    """Offsets shifted (repair needed) and a pre-allocated hole in a page's dictionary."""
    data = bytearray(shifted_offsets())
    at = data.index(b"/MediaBox")
    data[at : at + 16] = bytes(16)
    verdict = check_fd(fd_of(bytes(data)), len(data))
    assert not verdict.complete, verdict


# -- cut files today's check took --------------------------------------------------------------
@pytest.mark.parametrize("junk", [b"\xef\xbb\xbf", b"garbage\r\n"])
def test_a_pdf_with_junk_before_its_header_cut_in_half_is_incomplete(junk: bytes, fd_of) -> None:
    data = junk_before_header(junk)
    fd = fd_of(data)
    for c in (len(data) // 2, len(junk) + 3, len(junk) + 5, len(data) - 8):
        verdict = check_fd(fd, c)
        assert verdict.kind == "pdf" and not verdict.complete, (c, verdict)


@pytest.mark.parametrize("size", [1, 8, 4096, 70_000])
def test_a_file_of_nul_bytes_only_is_never_complete(size: int, fd_of) -> None:
    verdict = check_fd(fd_of(bytes(size)), size)
    assert not verdict.complete and "zero bytes" in verdict.reason, verdict


@pytest.mark.parametrize(("start", "kind"), [(b"\x89PNG\r\n", "png"), (b"\x89P", "png"), (b"%PD", "pdf"),
                                             (b"\xff\xd8", "jpeg"), (b"II*", "tiff"), (b"\xef\xbb\xbf%PD", "pdf")])
def test_a_partial_signature_then_nul_bytes_is_incomplete_not_unknown(start: bytes, kind: str, fd_of) -> None:
    data = start + bytes(5000)
    verdict = check_fd(fd_of(data), len(data))
    assert verdict.kind == kind and not verdict.complete, verdict


def mpo() -> bytes:
    buf = io.BytesIO()
    image(1).save(buf, format="MPO", save_all=True, append_images=[image(2)])
    data = buf.getvalue()
    assert data.count(b"MPF\x00") == 1 and data.count(b"\xff\xd9") >= 2
    return data


def test_an_mpo_cut_after_its_first_picture_is_incomplete(fd_of) -> None:
    data = mpo()
    fd = fd_of(data)
    assert check_fd(fd, len(data)).complete
    second = data.index(b"\xff\xd8\xff", 4)
    for c in (second, second + 1, second + 3, second + 40, len(data) - 1):
        verdict = check_fd(fd, c)
        assert verdict.kind == "jpeg" and not verdict.complete, (c, verdict)


def test_a_tiff_ifd_of_zeros_or_without_image_tags_is_incomplete(fd_of) -> None:
    data = bytearray(encode("TIFF"))
    ifd = struct.unpack("<L", data[4:8])[0]
    n = struct.unpack("<H", data[ifd : ifd + 2])[0]
    zeroed = bytes(data[:ifd]) + bytes(2 + 12 * n + 4) + bytes(data[ifd + 2 + 12 * n + 4 :])
    verdict = check_fd(fd_of(zeroed), len(zeroed))
    assert verdict.kind == "tiff" and not verdict.complete, verdict
    no_strips = bytearray(data)
    for i in range(n):  # rename StripOffsets/StripByteCounts to private tags
        at = ifd + 2 + 12 * i
        if struct.unpack("<H", no_strips[at : at + 2])[0] in (273, 279):
            no_strips[at : at + 2] = struct.pack("<H", 65000)
    verdict = check_fd(fd_of(bytes(no_strips)), len(no_strips))
    assert not verdict.complete and "size and data" in verdict.reason, verdict


# -- images: whole files readers open ----------------------------------------------------------
def jpeg_with_junk_between_segments() -> bytes:
    data = encode("JPEG")
    at = data.index(b"\xff\xdb")  # before the first DQT
    return data[:at] + b"\x12\x34junk" + data[at:]


def tiff_with_subifds_reached_twice(width: int = 16, height: int = 8) -> bytes:
    """Two pages whose SubIFDs tag names the same sub-image IFD (libtiff writes this): built
    by hand, little-endian grey strips, TIFF 6.0 §2 and the SubIFDs tag (330) of TIFF PM6."""
    pixels = bytes(range(width * height))
    n = 9
    ifd_size = 2 + 12 * n + 4
    ifds = [8, 8 + ifd_size, 8 + 2 * ifd_size]  # page 1, page 2, the shared sub-image
    data_at = 8 + 3 * ifd_size
    out = bytearray(b"II*\x00" + struct.pack("<L", ifds[0]))
    for k, at in enumerate(ifds):
        strip = data_at + k * len(pixels)
        entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
                   (273, 4, 1, strip), (278, 3, 1, height), (279, 4, 1, len(pixels)),
                   (330, 4, 1, ifds[2]) if k < 2 else (305, 2, 4, int.from_bytes(b"nsk\x00", "little"))]
        out += struct.pack("<H", n)
        for tag, typ, count, value in entries:
            out += struct.pack("<HHL", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<L", value))
        out += struct.pack("<L", ifds[1] if k == 0 else 0)
    assert len(out) == data_at
    return bytes(out + pixels * 3)


WHOLE_IMAGES = {
    "jpeg-bytes-after-eoi": lambda: encode("JPEG") + b"\x00\x1aAB",
    "jpeg-junk-between-segments": jpeg_with_junk_between_segments,
    "png-line-feed-after-iend": lambda: encode("PNG") + b"\n",
    "mpo": mpo,
    "tiff-subifds-reached-twice": tiff_with_subifds_reached_twice,
}


@pytest.mark.parametrize("name", sorted(WHOLE_IMAGES))
def test_whole_image_that_pillow_opens_is_taken_and_no_cut_of_it_is(name: str, fd_of) -> None:
    from PIL import Image

    data = WHOLE_IMAGES[name]()
    with Image.open(io.BytesIO(data)) as im:
        im.load()
    fd = fd_of(data)
    verdict = check_fd(fd, len(data))
    assert verdict.complete, verdict
    end = {"jpeg-bytes-after-eoi": len(data) - 4, "png-line-feed-after-iend": len(data) - 1}.get(name, len(data))
    wrongly = [c for c in cut_points(len(data)) if c < end and check_fd(fd, c).complete]
    assert wrongly == [], f"{name}: cut points judged complete: {wrongly[:10]}"


def test_a_4_gib_sparse_tiff_is_checked_by_its_directories(tmp_path: Path) -> None:
    """Strips spread over 4 GiB of a sparse file: the check reads the directories only."""
    strips, strip = 4096, 1 << 20
    entries = [(256, 4, 1, 1024), (257, 4, 1, strips * strip // 1024), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, 1), (273, 4, strips, 0), (278, 4, 1, strip // 1024), (279, 4, strips, 0)]
    ifd = 8
    arrays = ifd + 2 + 12 * len(entries) + 4
    data_at = arrays + 8 * strips
    head = bytearray(b"II*\x00" + struct.pack("<L", ifd) + struct.pack("<H", len(entries)))
    for tag, typ, count, value in entries:
        value = arrays if tag == 273 else arrays + 4 * strips if tag == 279 else value
        head += struct.pack("<HHL", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<L", value))
    head += struct.pack("<L", 0)
    head += struct.pack(f"<{strips}L", *(data_at + k * strip for k in range(strips)))
    head += struct.pack(f"<{strips}L", *([strip] * strips))
    path = tmp_path / "big.tif"
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(data_at + strips * strip)
    assert path.stat().st_size > 4 << 30
    assert check(path).complete
    fd = os.open(path, os.O_RDONLY)
    try:
        assert not check_fd(fd, data_at + strips * strip - 1).complete
    finally:
        os.close(fd)


# -- reasons for a person ------------------------------------------------------------------------
def test_reasons_are_rendered_in_the_language_chosen_when_shown(fd_of) -> None:
    from naskahd import i18n

    data = pdfs.build(pdfs.page_tree(2))
    cut = check_fd(fd_of(data), len(data) // 2)
    repaired = check_fd(fd_of(junk_before_header(b"\xef\xbb\xbf")), len(data) + 3)
    try:
        i18n.setup("id")
        assert cut.reason.startswith("PDF belum lengkap: ") and "%%EOF" in cut.reason, cut.reason
        assert repaired.reason.startswith("PDF rusak, dibuka dengan perbaikan"), repaired.reason
    finally:
        i18n.setup("en")
    assert cut.reason.startswith("PDF not complete: ") and cut.why.english() == cut.reason
    assert repaired.note is not None and repaired.reason.startswith("damaged PDF, opened by repair")


@pytest.mark.parametrize("tail", [b"\x1a\n1 0 obj\n<<", b"\n%comment\n", b"\nxref\n0 1", b"  12 0 o"])
def test_what_starts_an_appended_update_is_not_junk_after_eof(tail: bytes, fd_of) -> None:
    data = pdfs.build(pdfs.page_tree(2)) + tail
    verdict = check_fd(fd_of(data), len(data))
    assert not verdict.complete and "after its last %%EOF" in verdict.reason, verdict


@pytest.mark.parametrize("name", ["shifted-offsets", "bom-before-header", "xref-stream-self-entry-wrong", "startxref-3-late"])
def test_a_damaged_pdf_with_a_hole_anywhere_outside_stream_data_is_incomplete(name: str, tmp_path: Path) -> None:
    """A pre-allocated file written out of order, in a file that needs repair: 12 zero bytes
    anywhere but inside stream data (which no check can see into) keep it incomplete."""
    data = WHOLE_PDFS[name]()
    streams = []
    at = data.find(b"stream\n")
    while at >= 0:
        if data[at - 3 : at] != b"end":
            streams.append((at + 7, data.index(b"endstream", at)))
        at = data.find(b"stream\n", at + 1)
    path = tmp_path / "holed.pdf"
    header = data.index(b"%PDF-")
    wrongly = []
    for at in range(header + 5, len(data) - 12):
        if any(s <= at and at + 12 <= e for s, e in streams):
            continue
        holed = data[:at] + bytes(12) + data[at + 12 :]
        path.write_bytes(holed)
        if check(path).complete:
            wrongly.append(at)
    assert wrongly == [], f"{name}: complete with a hole at {wrongly[:10]}"


@pytest.mark.parametrize("xref", ["table", "stream"])
def test_a_big_file_with_an_update_is_sampled_in_each_section(xref: str, fd_of) -> None:
    """5,000 objects, then an incremental update: each section's last objects are checked
    (the entries are read in place per section, not merged into one dictionary)."""
    objects = pdfs.page_tree(1)
    objects.update({n: b"(filler %d)" % n for n in range(10, 5010)})
    base = pdfs.build(objects, xref=xref)
    data = bytearray(pdfs.build({1: b"<< /Type /Catalog /Pages 2 0 R /Lang (id) >>", 5010: b"(new)"}, base=base, size=5011))
    assert check_fd(fd_of(bytes(data)), len(data)).complete
    for victim, why in ((b"5009 0 obj", "object 5009"), (b"5010 0 obj", "")):
        holed = bytearray(data)
        at = holed.rindex(victim)
        holed[at : at + 10] = bytes(10)
        verdict = check_fd(fd_of(bytes(holed)), len(holed))
        assert not verdict.complete and why in verdict.reason, (victim, verdict)
