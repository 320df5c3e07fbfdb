"""Is a settled scan complete? Content checks for PDF, JPEG, PNG and TIFF (issue 8).

Quiet time alone is no proof: a network scanner writing a multi-page PDF over SMB pauses
between pages. After the settle window the daemon asks ``check(path)``; a file of a known
format is taken only when its own structure says the writer reached the end.

What counts as the end (the name of a file never matters, only its first bytes):

* PDF (PDF 1.7 §7.5.4-7.5.8): the file ends with ``%%EOF`` (then only PDF white-space,
  which includes NUL) after a line ``startxref`` N, and a small reader here (stdlib only:
  the daemon does not import pypdf, for its memory and time) loads the cross-reference
  chain from N. Exactly at N, after a line end or space (as pypdf's strict mode wants
  it), there is a classic ``xref`` table (subsections of 20-byte entries; 19/21-byte lines
  are tolerated) with its ``trailer``, or a cross-reference stream (``/W``, ``/Index``,
  no filter or /FlateDecode, PNG predictors 10-15 and TIFF predictor 2; an indirect
  ``/Length`` is resolved through the entries already read, else the data runs to
  ``endstream``). Then every ``/Prev`` (and ``/XRefStm`` of hybrid files), the newest
  entry winning, with loop protection and a cap (1,000 sections, 500,000 entries: more is incomplete). The
  newest trailer must name a ``/Root``. Every in-use entry must point inside the file at
  ``<num> <gen> obj`` of that very object (one ~32-byte read each: all of them up to
  2,000 objects; above that a spread sample of 1,500 plus the last 500 by offset); every
  object stream holding a compressed object must itself be listed in use; the catalog
  (and an ``/Encrypt`` dictionary) must be there and parse as a dictionary (a catalog in
  an object stream: that stream's index lists it and it parses, unless the file is
  encrypted). A NUL byte inside the structure that is read (trailers, tables, stream and
  catalog dictionaries, the ``startxref`` line) is a hole not written yet. Anything
  malformed or unsupported (another filter, an unknown entry type, a loop) is incomplete
  with a short reason. Other objects' bodies are not read: a hole inside one that spares
  every header, the tables and the tail goes unnoticed (as with the sampled headers of a
  big file). Judging by the real end means an incremental update still being appended (an
  old ``%%EOF`` followed by more bytes) is incomplete. The tests use pypdf (strict) as
  the oracle: over every prefix, and over files with a zeroed hole anywhere, "complete"
  only where pypdf loads the file, its cross-reference chain and its catalog.
* JPEG (T.81 B.1): the marker segments from SOI walk intact to a start-of-scan (SOS), and
  the file ends with EOI (FF D9) after it. Entropy-coded data cannot contain FF D9 (FF is
  stuffed as FF 00, T.81 B.1.1.5), so a truncated scan does not end in EOI by accident.
* PNG (PNG spec §5): the chunk chain from the signature walks intact to IEND, with
  IEND's fixed CRC (AE 42 60 82).
* TIFF (TIFF 6.0 §2, and BigTIFF): every IFD in the chain (and SubIFD/Exif/GPS/Interop
  IFDs), every out-of-line tag value, and every strip/tile (offset + byte count) lies
  inside the file.

After the end marker of JPEG and PNG only NUL bytes are allowed (some devices pad to a
block size; a zero-filled tail is also what a pre-allocated, half-written file shows, and
that still has no end marker before the zeros). Other trailing bytes mean "not finished".

Known limit: a writer that leaves a structurally complete file between pages (a TIFF whose
next page's IFD is not linked yet, or a PDF rewritten as incremental updates page by page)
is indistinguishable from a finished one by content; the settle window and the
open-for-write probe (``naskahd.samba``) carry that case.

Other files (no known magic bytes) are complete: the office keeps everything, they are
filed after the settle window.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import stat
import struct
import zlib
from dataclasses import dataclass
from typing import Any

PDF, JPEG, PNG, TIFF = "pdf", "jpeg", "png", "tiff"

HEAD = 64 * 1024  # one read covers the header structures of almost every scan
PDF_TAIL = 1024  # PDF 1.7 §7.5.5: %%EOF (and startxref) within the last 1024 bytes
PAD_TAIL = 64 * 1024  # how much trailing NUL padding is looked at after an end marker
PDF_WS = b"\x00\t\n\x0c\r "  # PDF 1.7 §7.2.2 Table 1: white-space characters
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND_CRC = b"\xaeB`\x82"  # CRC-32 of b"IEND" (no data): constant
MAX_IFDS = 100_000  # a loop or a hostile chain must not keep the check busy


@dataclass(frozen=True)
class Completeness:
    kind: str | None  # "pdf" | "jpeg" | "png" | "tiff" | None (no known magic bytes)
    complete: bool  # None-kind files are complete
    reason: str  # short English reason for logs and status


_SIGNATURES = (
    (b"%PDF-", PDF),  # PDF 1.7 §7.5.2 (at offset 0; leading junk is not accepted)
    (b"\xff\xd8\xff", JPEG),  # SOI, then the next marker's FF (T.81 B.1.1.2)
    (PNG_SIGNATURE, PNG),  # PNG §5.2
    (b"II*\x00", TIFF), (b"MM\x00*", TIFF),  # TIFF 6.0 §2 image file header
    (b"II+\x00", TIFF), (b"MM\x00+", TIFF),  # BigTIFF
)


def detect_kind(head: bytes) -> str | None:
    """The format by its magic bytes at offset 0 (never by name).

    A file shorter than a signature and equal to its start (``%PD``) is that format, not
    yet complete: the scanner has only just begun writing it.
    """
    for signature, kind in _SIGNATURES:
        if head.startswith(signature) or (head and len(head) < len(signature) and signature.startswith(head)):
            return kind
    return None


def check(path: str | os.PathLike[str]) -> Completeness:
    """Open ``path`` without following symlinks or blocking, and check it.

    Raises OSError if it cannot be opened or is not a regular file. BlockingIOError means
    another process holds a kernel lease on it (Samba with ``kernel oplocks = yes`` and a
    client's oplock): it is in use, ask again later.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        return check_fd(fd, st.st_size)
    finally:
        os.close(fd)


def check_fd(fd: int, size: int) -> Completeness:
    """Check the first ``size`` bytes of the regular file open on ``fd`` (position untouched)."""
    kind = detect_kind(os.pread(fd, min(size, 8), 0))
    if kind is None:
        return Completeness(None, True, "no PDF, JPEG, PNG or TIFF signature: taken after the settle window")
    f = _File(fd, size)
    try:
        problem = _CHECKS[kind](f)
    except struct.error:  # a read came back short: the file shrank while being checked
        problem = "the file changed while it was being checked"
    if problem is None:
        return Completeness(kind, True, _COMPLETE[kind])
    return Completeness(kind, False, problem)


class _File:
    """pread access to the first ``size`` bytes, with the head cached (one syscall for most checks)."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size
        self.head = os.pread(fd, min(size, HEAD), 0)

    def at(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset``; shorter at the end (or if the file shrank meanwhile)."""
        n = max(0, min(n, self.size - offset))
        if offset < 0 or n == 0:
            return b""
        if offset + n <= len(self.head):
            return self.head[offset : offset + n]
        return os.pread(self.fd, n, offset)

    def tail(self, n: int) -> tuple[int, bytes]:
        start = max(0, self.size - n)
        return start, self.at(start, self.size - start)

    def zeros_after(self, end: int) -> bool:
        """Only NUL padding between ``end`` and the end of the file."""
        rest = self.size - end
        return rest == 0 or (rest <= PAD_TAIL and not self.at(end, rest).strip(b"\x00"))


# -- PDF ------------------------------------------------------------------------------------------
# White-space inside the structure. NUL is PDF white-space too (§7.2.2), but no writer puts
# it there: inside a trailer, a table or a header it is a hole not written yet.
_WS = rb"[\t\n\x0c\r ]"
_STARTXREF = re.compile(rb"(?<=[\r\n])startxref" + _WS + rb"+(\d{1,15})" + _WS + rb"*%%EOF\Z")  # on its own line
_OBJ_HEADER = re.compile(rb"(\d{1,10})" + _WS + rb"+(\d{1,5})" + _WS + rb"+obj")
# An object header at an xref offset; a few bytes of slack as readers allow (PDF 1.7 §7.3.10).
_OBJ_AT = re.compile(_WS + rb"{0,4}" + _OBJ_HEADER.pattern)
_XREF_AT = re.compile(_WS + rb"{0,4}xref")
_SUBSECTION = re.compile(_WS + rb"*(\d{1,10})[ ]+(\d{1,10})" + _WS + rb"*")  # "start count" (§7.5.4)
_ENTRIES20 = re.compile(rb"(?:\d{10} \d{5} [nf](?: \r| \n|\r\n))*")  # 20-byte entries
_ENTRY_LOOSE = re.compile(rb"(\d{10}) (\d{5}) ([nf])[ ]?(?:\r\n|\r|\n)")  # writers with 19/21-byte ones
_TRAILER = re.compile(_WS + rb"*(?:%[^\r\n]*[\r\n]" + _WS + rb"*)*trailer")
_STREAM_KW = re.compile(_WS + rb"*stream(?:\r\n|\n|\r)")
_ENDSTREAM = re.compile(_WS + rb"*endstream")
_TOKEN = re.compile(rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]+")  # regular characters (§7.2.2)
_HEX = re.compile(rb"[0-9A-Fa-f\t\n\x0c\r ]*")
_DELIM = rb"(?=[\x00\t\n\x0c\r ()<>\[\]{}/%])"
_INT = re.compile(rb"[+-]?\d{1,30}" + _DELIM)
_REF = re.compile(rb"(\d{1,10})" + _WS + rb"+(\d{1,5})" + _WS + rb"+R" + _DELIM)
_SKIP = re.compile(rb"(?:[\t\n\x0c\r ]+|%[^\r\n]*)*")
MAX_XREF_SECTIONS = 1_000  # a /Prev loop or a hostile chain must not keep the check busy
MAX_XREF_ENTRIES = 500_000  # entries over the whole chain (a scan has tens to thousands): bounds memory
MAX_OBJECTS_CHECKED = 2_000  # object headers checked: all up to this, else a spread sample
LAST_OBJECTS_CHECKED = 500  # ... which always includes the last ones the file holds
MAX_PDF_DICT = 1024 * 1024  # a trailer or xref stream dictionary larger than this is not a scan's


class _PdfBad(Exception):
    """The PDF structure is not (yet) whole; the message is the reason."""


class _Short(Exception):
    """The parser ran past the bytes it was given."""


@dataclass(frozen=True)
class _Ref:
    num: int
    gen: int


def _check_pdf(f: _File) -> str | None:
    start, tail = f.tail(PDF_TAIL)
    body = tail.rstrip(PDF_WS)
    if not body.endswith(b"%%EOF"):
        if b"%%EOF" in tail:
            return "PDF has data after its last %%EOF (an update is still being appended)"
        return "PDF has no %%EOF at its end yet"
    m = _STARTXREF.match(body, max(0, body.rfind(b"startxref")))
    if m is None:
        return "PDF ends with %%EOF but no startxref offset precedes it"
    offset = int(m.group(1))
    if not 0 < offset < start + m.start():
        return f"PDF startxref {offset} does not point inside the file"
    # Exactly at N (as pypdf's strict mode wants it), after a line end or space.
    near = f.at(offset - 1, 32)
    if near[:1] not in (b"\t", b"\n", b"\r", b" ") or not (near[1:5] == b"xref" or _OBJ_HEADER.match(near, 1)):
        return f"PDF startxref {offset} does not point at a cross-reference section"
    try:
        return _check_xref_chain(f, offset)
    except _PdfBad as exc:
        return f"PDF {exc}"
    except RecursionError:
        return "PDF cannot be read: its structure is too deeply nested"
    except (ValueError, IndexError, TypeError, KeyError, OverflowError) as exc:  # odd bytes: not a whole PDF (yet)
        return f"PDF cannot be read yet: {type(exc).__name__}: {str(exc)[:120]}"


def _check_xref_chain(f: _File, startxref: int) -> str | None:
    """Read every cross-reference section from ``startxref`` on and check what they list."""
    # entries: object number -> (type, field 2, field 3) as in a cross-reference stream
    # (PDF 1.7 §7.5.8.3 Table 18): 0 free, 1 (offset, generation), 2 (object stream, index).
    # The newest section is read first and wins (§7.5.6).
    entries: dict[int, tuple[int, int, int]] = {}
    newest: dict[str, Any] | None = None
    todo: list[int] = [startxref]
    seen: set[int] = set()
    while todo:
        offset = todo.pop()
        if offset in seen:
            raise _PdfBad(f"cross-reference chain loops at offset {offset}")
        seen.add(offset)
        if len(seen) > MAX_XREF_SECTIONS:
            raise _PdfBad("has too many cross-reference sections")
        trailer = _read_xref_section(f, offset, entries, first=newest is None)
        if newest is None:
            newest = trailer
        prev = trailer.get("/Prev")
        if prev is not None:
            if type(prev) is not int or not 0 < prev < f.size:
                raise _PdfBad(f"/Prev {prev!r} does not point inside the file")
            todo.append(prev)
        stm = trailer.get("/XRefStm")  # hybrid file (§7.5.8.4): searched before /Prev
        if stm is not None:
            if type(stm) is not int or not 0 < stm < f.size:
                raise _PdfBad(f"/XRefStm {stm!r} does not point inside the file")
            if stm not in seen:
                seen.add(stm)
                _read_xref_stream(f, stm, entries)
    assert newest is not None
    root = newest.get("/Root")
    if not isinstance(root, _Ref):
        return "PDF has no /Root (document catalog) reference in its trailer yet"
    encrypt = newest.get("/Encrypt")
    if isinstance(encrypt, _Ref):  # readers need it first; never in an object stream (§7.5.7)
        entry = entries.get(encrypt.num)
        m = _OBJ_AT.match(f.at(entry[1], 32)) if entry is not None and entry[0] == 1 else None
        if m is None or not isinstance(_parse_at(f, entry[1] + m.end()), dict):
            return f"PDF encryption dictionary (object {encrypt.num}) is not there yet"
    return _check_objects(f, entries, root, encrypted="/Encrypt" in newest)


def _read_xref_section(f: _File, offset: int, entries: dict[int, tuple[int, int, int]], first: bool) -> dict[str, Any]:
    near = f.at(offset, 64)
    if _XREF_AT.match(near):
        return _read_xref_table(f, offset + near.index(b"xref") + 4, entries)
    if _OBJ_AT.match(near):
        return _read_xref_stream(f, offset, entries)
    if first:
        raise _PdfBad(f"startxref {offset} does not point at a cross-reference section")
    raise _PdfBad(f"/Prev {offset} does not point at a cross-reference section")


def _read_xref_table(f: _File, pos: int, entries: dict[int, tuple[int, int, int]]) -> dict[str, Any]:
    """A classic table (PDF 1.7 §7.5.4), ``pos`` just after ``xref``; returns its trailer."""
    while True:
        head = f.at(pos, 48)
        m = _TRAILER.match(head)
        if m:
            break
        m = _SUBSECTION.match(head)
        if m is None or m.end() == len(head):
            raise _PdfBad(f"cross-reference table is cut off or broken at offset {pos}")
        number, count = int(m.group(1)), int(m.group(2))
        if len(entries) + count > MAX_XREF_ENTRIES:
            raise _PdfBad("lists too many objects")
        pos += m.end()
        block = f.at(pos, 20 * count)
        if len(block) == 20 * count and _ENTRIES20.fullmatch(block):
            for i in range(0, 20 * count, 20):
                if number not in entries:
                    entries[number] = (1, int(block[i : i + 10]), int(block[i + 11 : i + 16])) if block[i + 17] == 110 else (0, 0, 0)
                number += 1
            pos += 20 * count
        else:  # entries of 19 or 21 bytes (non-conforming, common enough): one by one
            block = f.at(pos, 21 * count)
            at = 0
            for _ in range(count):
                e = _ENTRY_LOOSE.match(block, at)
                if e is None:
                    raise _PdfBad(f"cross-reference table is cut off or broken at offset {pos + at}")
                if number not in entries:
                    entries[number] = (1, int(e.group(1)), int(e.group(2))) if e.group(3) == b"n" else (0, 0, 0)
                number += 1
                at = e.end()
            pos += at
    trailer = _parse_at(f, pos + m.end())
    if not isinstance(trailer, dict):
        raise _PdfBad("trailer is not a dictionary")
    return trailer


def _read_xref_stream(f: _File, offset: int, entries: dict[int, tuple[int, int, int]]) -> dict[str, Any]:
    """A cross-reference stream (PDF 1.7 §7.5.8); returns its dictionary (the trailer)."""
    d, data = _read_stream(f, offset, entries)
    if d.get("/Type") != "/XRef":
        raise _PdfBad(f"object at offset {offset} is not a cross-reference stream")
    size, w = d.get("/Size"), d.get("/W")
    if type(size) is not int or size < 0:
        raise _PdfBad(f"cross-reference stream at {offset} has no /Size")
    if not (isinstance(w, list) and len(w) == 3 and all(type(x) is int and 0 <= x <= 8 for x in w)) or sum(w) == 0:
        raise _PdfBad(f"cross-reference stream at {offset} has a bad /W")
    index = d.get("/Index", [0, size])
    if not (isinstance(index, list) and len(index) % 2 == 0 and all(type(x) is int and x >= 0 for x in index)):
        raise _PdfBad(f"cross-reference stream at {offset} has a bad /Index")
    total = sum(index[1::2])
    if len(entries) + total > MAX_XREF_ENTRIES:
        raise _PdfBad("lists too many objects")
    row = sum(w)
    data = _decode(d, data, row, offset)
    if len(data) < total * row:
        raise _PdfBad(f"cross-reference stream at {offset} holds fewer entries than its /Index lists")
    w0, w1, w2 = w
    at = 0
    for k in range(0, len(index), 2):
        number = index[k]
        for _ in range(index[k + 1]):
            if number not in entries:
                t = int.from_bytes(data[at : at + w0], "big") if w0 else 1
                b = int.from_bytes(data[at + w0 : at + w0 + w1], "big")
                c = int.from_bytes(data[at + w0 + w1 : at + row], "big")
                if t > 2:  # §7.5.8.3 reads them as null; no writer makes them, pypdf (strict) refuses
                    raise _PdfBad(f"cross-reference stream at {offset} has an entry of unknown type {t}")
                entries[number] = (t, b, c) if t else (0, 0, 0)
            number += 1
            at += row
    return d


def _read_stream(f: _File, offset: int, entries: dict[int, tuple[int, int, int]]) -> tuple[dict[str, Any], bytes]:
    """The dictionary and raw data of the stream object at ``offset`` (PDF 1.7 §7.3.8)."""
    head = f.at(offset, 64)
    m = _OBJ_AT.match(head)
    if m is None:
        raise _PdfBad(f"no object at offset {offset}")
    d, end = _parse_at(f, offset + m.end(), with_end=True)
    if not isinstance(d, dict):
        raise _PdfBad(f"object at offset {offset} is not a stream")
    s = _STREAM_KW.match(f.at(end, 32))
    if s is None:
        raise _PdfBad(f"object at offset {offset} is not a stream (or it is cut off)")
    start = end + s.end()
    length = d.get("/Length")
    if isinstance(length, _Ref):
        length = _resolve_length(f, length, entries)
    elif type(length) is not int or length < 0:
        raise _PdfBad(f"stream at offset {offset} has no /Length")
    if length is not None:
        if start + length > f.size:
            raise _PdfBad(f"stream at offset {offset} runs past the end")
        if _ENDSTREAM.match(f.at(start + length, 32)) is None:
            raise _PdfBad(f"stream at offset {offset} does not end where its /Length says")
        return d, f.at(start, length)
    # /Length is an object not listed yet: the data runs up to endstream.
    pos = start
    while pos < f.size:
        chunk = f.at(pos, 65536 + 9)
        stop = chunk.find(b"endstream")
        if stop >= 0:
            return d, f.at(start, pos + stop - start)
        pos += 65536
    raise _PdfBad(f"stream at offset {offset} has no endstream")


def _resolve_length(f: _File, ref: _Ref, entries: dict[int, tuple[int, int, int]]) -> int | None:
    entry = entries.get(ref.num)
    if entry is None or entry[0] != 1:
        return None
    m = _OBJ_AT.match(f.at(entry[1], 64))
    if m is None or int(m.group(1)) != ref.num:
        raise _PdfBad(f"object {ref.num} (a stream /Length) is not at its offset {entry[1]} yet")
    value = _parse_at(f, entry[1] + m.end())
    if type(value) is not int or value < 0:
        raise _PdfBad(f"object {ref.num} (a stream /Length) is not a length")
    return value


def _decode(d: dict[str, Any], data: bytes, row: int, offset: int) -> bytes:
    """/FlateDecode (or no filter) and the predictors of PDF 1.7 §7.4.4.4."""
    filters = d.get("/Filter")
    parms = d.get("/DecodeParms")
    if isinstance(filters, list):
        if len(filters) > 1:
            raise _PdfBad(f"stream at offset {offset} has a filter chain this check does not read")
        filters = filters[0] if filters else None
        parms = parms[0] if isinstance(parms, list) and parms else parms
    if filters is None:
        return data
    if filters not in ("/FlateDecode", "/Fl"):
        raise _PdfBad(f"stream at offset {offset} has filter {filters} this check does not read")
    z = zlib.decompressobj()
    try:
        out = z.decompress(data, MAX_XREF_ENTRIES * 40)
    except zlib.error:
        raise _PdfBad(f"stream at offset {offset} does not decompress") from None
    if not z.eof:
        raise _PdfBad(f"stream at offset {offset} is cut off")
    parms = parms if isinstance(parms, dict) else {}
    predictor = parms.get("/Predictor", 1)
    if predictor == 1:
        return out
    colors, bpc, columns = parms.get("/Colors", 1), parms.get("/BitsPerComponent", 8), parms.get("/Columns", 1)
    if not all(type(x) is int and x > 0 for x in (colors, bpc, columns)):
        raise _PdfBad(f"stream at offset {offset} has bad /DecodeParms")
    stride = (colors * bpc * columns + 7) // 8
    bpp = max(1, colors * bpc // 8)
    if predictor == 2:
        if bpc != 8:
            raise _PdfBad(f"stream at offset {offset} uses a TIFF predictor this check does not read")
        rows = [bytearray(out[i : i + stride]) for i in range(0, len(out), stride)]
        for r in rows:
            for i in range(bpp, len(r)):
                r[i] = (r[i] + r[i - bpp]) & 0xFF
        return b"".join(rows)
    if 10 <= predictor <= 15:
        return _png_unpredict(out, stride, bpp, offset)
    raise _PdfBad(f"stream at offset {offset} has unknown /Predictor {predictor}")


def _png_unpredict(data: bytes, stride: int, bpp: int, offset: int) -> bytes:
    """PNG filters (PNG spec §9, PDF 1.7 §7.4.4.4): each row is a filter byte then ``stride`` bytes."""
    n = len(data) // (stride + 1)
    data = data[: n * (stride + 1)]
    kinds = set(data[:: stride + 1])
    if kinds <= {2}:  # Up on every row (what writers use for xref streams): column sums
        cols = [bytes(map((255).__and__, itertools.accumulate(data[1 + j :: stride + 1]))) for j in range(stride)]
        out = bytearray(n * stride)
        for j in range(stride):
            out[j::stride] = cols[j]
        return bytes(out)
    out = bytearray()
    prev = bytearray(stride)
    for r in range(n):
        kind = data[r * (stride + 1)]
        cur = bytearray(data[r * (stride + 1) + 1 : (r + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                cur[i] = (cur[i] + cur[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                cur[i] = (cur[i] + prev[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                cur[i] = (cur[i] + ((cur[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            raise _PdfBad(f"stream at offset {offset} has an unknown PNG filter type {kind}")
        out += cur
        prev = cur
    return bytes(out)


def _check_objects(f: _File, entries: dict[int, tuple[int, int, int]], root: _Ref, encrypted: bool) -> str | None:
    """Every in-use object (or a sample of many) is where the chain says; so is the catalog."""
    in_use = [(e[1], num, e[2]) for num, e in entries.items() if e[0] == 1]
    for num, e in entries.items():  # a compressed object's object stream must be listed in use
        if e[0] == 2:
            host = entries.get(e[1])
            if host is None or host[0] != 1:
                return f"PDF object stream {e[1]} (holding object {num}) is not listed"
    if len(in_use) > MAX_OBJECTS_CHECKED:
        in_use.sort()
        rest, last = in_use[:-LAST_OBJECTS_CHECKED], in_use[-LAST_OBJECTS_CHECKED:]
        step = len(rest) / (MAX_OBJECTS_CHECKED - LAST_OBJECTS_CHECKED)
        in_use = [rest[int(i * step)] for i in range(MAX_OBJECTS_CHECKED - LAST_OBJECTS_CHECKED)] + last
    at = f.at
    for offset, num, gen in in_use:
        if offset == 0:
            continue  # PDF 1.7 §7.5.4: readers treat such an entry as a null object
        m = _OBJ_AT.match(at(offset, 32))
        if m is None or int(m.group(1)) != num or int(m.group(2)) != gen:
            return f"PDF object {num} is not at its offset {offset} yet"
    entry = entries.get(root.num)
    if entry is None or entry[0] == 0 or (entry[0] == 1 and entry[2] != root.gen) or (entry[0] == 2 and root.gen):
        return f"PDF document catalog (object {root.num} {root.gen}) is not listed yet"
    if entry[0] == 1:
        m = _OBJ_AT.match(at(entry[1], 32))
        if m is None or int(m.group(1)) != root.num or int(m.group(2)) != root.gen or entry[1] == 0:
            return f"PDF document catalog (object {root.num}) is not at its offset {entry[1]} yet"
        if not isinstance(_parse_at(f, entry[1] + m.end()), dict):
            return f"PDF document catalog (object {root.num}) is not a dictionary"
        return None
    # In an object stream (§7.5.7): its header lists the catalog at the entry's index.
    host = entries[entry[1]]
    m = _OBJ_AT.match(at(host[1], 32))
    if m is None or int(m.group(1)) != entry[1]:
        return f"PDF object stream {entry[1]} is not at its offset {host[1]} yet"
    if encrypted:
        return None  # its data needs the key; the chain and the headers are whole
    d, data = _read_stream(f, host[1], entries)
    n, first = d.get("/N"), d.get("/First")
    if d.get("/Type") != "/ObjStm" or type(n) is not int or type(first) is not int or not 0 <= entry[2] < n:
        return f"PDF object stream {entry[1]} is broken"
    data = _decode(d, data, 1, host[1])
    numbers = data[:first].split()
    if len(numbers) < 2 * n or numbers[2 * entry[2]] != b"%d" % root.num:
        return f"PDF object stream {entry[1]} does not hold the document catalog"
    try:
        catalog, _ = _parse(data, first + int(numbers[2 * entry[2] + 1]), 0)
    except _Short:
        catalog = None
    if not isinstance(catalog, dict):
        return f"PDF document catalog (object {root.num}) is not a dictionary"
    return None


# A small reader for PDF objects (PDF 1.7 §7.3): enough for trailers and stream dictionaries.
# Names become str ("/Root"), strings bytes, numbers int/float, arrays list, dictionaries
# dict, references _Ref.
def _parse_at(f: _File, pos: int, with_end: bool = False) -> Any:
    n = 512
    while True:
        buf = f.at(pos, n)
        try:
            value, end = _parse(buf, 0, 0)
        except _Short:
            if len(buf) < n or n >= MAX_PDF_DICT:
                raise _PdfBad(f"object at offset {pos} is cut off") from None
            n *= 8
            continue
        return (value, pos + end) if with_end else value


def _skip(buf: bytes, i: int) -> int:
    i = _SKIP.match(buf, i).end()  # type: ignore[union-attr]
    if i >= len(buf):
        raise _Short
    if buf[i] == 0:
        raise _PdfBad("has zero bytes inside its structure (a part not written yet)")
    return i


def _parse(buf: bytes, i: int, depth: int) -> tuple[Any, int]:
    if depth > 100:
        raise _PdfBad("structure is too deeply nested")
    i = _skip(buf, i)
    c = buf[i]
    if c == 60:  # <
        if buf[i + 1 : i + 2] == b"<":
            d: dict[str, Any] = {}
            i += 2
            while True:
                i = _skip(buf, i)
                if buf[i] == 62:  # >
                    if i + 1 >= len(buf):
                        raise _Short
                    if buf[i + 1] != 62:
                        raise _PdfBad("dictionary is broken")
                    return d, i + 2
                key, i = _parse(buf, i, depth + 1)
                if not isinstance(key, str) or not key.startswith("/"):
                    raise _PdfBad("dictionary key is not a name")
                d[key], i = _parse(buf, i, depth + 1)
        if i + 1 >= len(buf):
            raise _Short
        j = buf.find(b">", i)
        if j < 0:
            raise _Short
        if _HEX.fullmatch(buf, i + 1, j) is None:
            raise _PdfBad("has a broken hexadecimal string (a part not written yet?)")
        return buf[i + 1 : j], j + 1
    if c == 91:  # [
        a: list[Any] = []
        i += 1
        while True:
            i = _skip(buf, i)
            if buf[i] == 93:  # ]
                return a, i + 1
            v, i = _parse(buf, i, depth + 1)
            a.append(v)
    if c == 40:  # ( literal string, balanced parentheses, backslash escapes
        level, j, n = 0, i, len(buf)
        while j < n:
            b = buf[j]
            if b == 92:
                j += 2
                continue
            if b == 40:
                level += 1
            elif b == 41:
                level -= 1
                if level == 0:
                    return buf[i + 1 : j], j + 1
            j += 1
        raise _Short
    if c == 47:  # /name
        m = _TOKEN.match(buf, i + 1)
        end = m.end() if m else i + 1
        if end == len(buf):
            raise _Short
        return "/" + buf[i + 1 : end].decode("latin-1"), end
    if 48 <= c <= 57 or c in b"+-":  # a reference, or an integer (either followed by a delimiter)
        m = _REF.match(buf, i)
        if m is not None:
            return _Ref(int(m.group(1)), int(m.group(2))), m.end()
        m = _INT.match(buf, i)
        if m is not None:
            return int(m.group()), m.end()
    m = _TOKEN.match(buf, i)
    if m is None:
        raise _PdfBad(f"unexpected {bytes([c])!r} in an object")
    end = m.end()
    if end == len(buf):
        raise _Short
    tok = m.group()
    if tok in (b"true", b"false"):
        return tok == b"true", end
    if tok == b"null":
        return None, end
    try:
        return float(tok), end
    except ValueError:
        raise _PdfBad(f"unexpected {tok[:20]!r} in an object") from None


# -- JPEG -----------------------------------------------------------------------------------------
def _check_jpeg(f: _File) -> str | None:
    # T.81 B.1.1.4: after SOI, marker segments (FF xx + 2-byte length) up to SOS.
    pos = 2
    while True:
        seg = f.at(pos, 4)
        if len(seg) < 2:
            return "JPEG ends inside its headers (no image data yet)"
        if seg[0] != 0xFF:
            return f"JPEG marker structure is broken at offset {pos}"
        if seg[1] == 0xFF:  # B.1.1.2: fill bytes before a marker
            pos += 1
            continue
        marker = seg[1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length
            pos += 2
            continue
        if marker in (0xD8, 0xD9, 0x00):
            return f"JPEG marker structure is broken at offset {pos}"
        if len(seg) < 4:
            return "JPEG ends inside its headers (no image data yet)"
        length = int.from_bytes(seg[2:4], "big")
        if length < 2:
            return f"JPEG marker structure is broken at offset {pos}"
        pos += 2 + length
        if pos > f.size:
            return "JPEG ends inside its headers (no image data yet)"
        if marker == 0xDA:  # SOS: entropy-coded data follows
            break
    start, tail = f.tail(PAD_TAIL)
    body = tail.rstrip(b"\x00")
    if not body:
        return "JPEG ends in zero bytes, no EOI marker yet"
    if not body.endswith(b"\xff\xd9") or start + len(body) - 2 < pos:
        return "JPEG has no EOI marker at its end yet"
    return None


# -- PNG ------------------------------------------------------------------------------------------
def _check_png(f: _File) -> str | None:
    # PNG §5.3: chunk = length (4, <= 2^31-1) + type (4 letters) + data + CRC (4).
    pos = len(PNG_SIGNATURE)
    first = True
    while True:
        hdr = f.at(pos, 8)
        if len(hdr) < 8:
            return "PNG has no IEND chunk yet"
        length, ctype = int.from_bytes(hdr[:4], "big"), hdr[4:8]
        if length > 0x7FFFFFFF or not ctype.isalpha() or (first and ctype != b"IHDR"):
            return f"PNG chunk structure is broken at offset {pos}"
        first = False
        end = pos + 12 + length
        if end > f.size:
            return f"PNG ends inside a {ctype.decode('ascii')} chunk (no IEND yet)"
        if ctype == b"IEND":
            if length != 0 or f.at(pos + 8, 4) != PNG_IEND_CRC:
                return "PNG IEND chunk is damaged"
            if not f.zeros_after(end):
                return "PNG has data after its IEND chunk"
            return None
        pos = end


# -- TIFF -----------------------------------------------------------------------------------------
# TIFF 6.0 §2 field types (and BigTIFF's 16-18): bytes per value.
_TIFF_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_TIFF_UINT = {1: "B", 3: "H", 4: "L", 13: "L", 16: "Q", 18: "Q"}
_DATA_PAIRS = ((273, 279, "strip"), (324, 325, "tile"), (513, 514, "JPEG thumbnail"))  # offsets, byte counts
_IFD_POINTERS = {330, 34665, 34853, 40965}  # SubIFDs, Exif, GPS, Interoperability
_POINTER_TAGS = _IFD_POINTERS | {t for pair in _DATA_PAIRS for t in pair[:2]}


def _check_tiff(f: _File) -> str | None:
    hdr = f.at(0, 16)
    bo = "<" if hdr[:1] == b"I" else ">"
    big = hdr[2:4] in (b"+\x00", b"\x00+")
    if len(hdr) < 4:
        return "TIFF ends inside its header"
    if big:  # BigTIFF: byte size 8, constant 0, 8-byte offsets; 20-byte entries, 8-byte count
        if len(hdr) < 16:
            return "TIFF ends inside its header"
        if struct.unpack(bo + "HH", hdr[4:8]) != (8, 0):
            return "BigTIFF header is broken"
        first = struct.unpack(bo + "Q", hdr[8:16])[0]
        cnt_fmt, ent_fmt, off_fmt, ent_size, off_size = "Q", "HHQ8s", "Q", 20, 8
    else:
        if len(hdr) < 8:
            return "TIFF ends inside its header"
        first = struct.unpack(bo + "L", hdr[4:8])[0]
        cnt_fmt, ent_fmt, off_fmt, ent_size, off_size = "H", "HHL4s", "L", 12, 4
    if first == 0:
        return "TIFF has no image directory yet"
    cnt_size = struct.calcsize(cnt_fmt)
    todo, seen = [first], set()
    while todo:
        ifd = todo.pop()
        if ifd in seen:
            return f"TIFF image directories loop at offset {ifd}"
        seen.add(ifd)
        if len(seen) > MAX_IFDS:
            return "TIFF has too many image directories"
        raw = f.at(ifd, cnt_size)
        if len(raw) < cnt_size:
            return f"TIFF image directory at {ifd} lies past the end (not written yet)"
        n = struct.unpack(bo + cnt_fmt, raw)[0]
        ifd_end = ifd + cnt_size + n * ent_size + off_size
        if ifd_end > f.size:
            return f"TIFF image directory at {ifd} runs past the end (not written yet)"
        table = f.at(ifd + cnt_size, n * ent_size + off_size)
        values: dict[int, list[int]] = {}
        for i in range(n):
            tag, typ, count, field = struct.unpack_from(bo + ent_fmt, table, i * ent_size)
            tsize = _TIFF_TYPE_SIZE.get(typ)
            if tsize is None:
                continue  # TIFF 6.0 §2: readers skip fields of unknown type
            nbytes = tsize * count
            where = None
            if nbytes > off_size:  # the value lies elsewhere; the field holds its offset
                where = struct.unpack(bo + off_fmt, field)[0]
                if where + nbytes > f.size:
                    return f"TIFF tag {tag} value at {where} runs past the end (not written yet)"
            if typ in _TIFF_UINT and (tag in _POINTER_TAGS or typ in (13, 18)):
                data = field[:nbytes] if where is None else f.at(where, nbytes)
                values[tag] = list(struct.unpack(bo + _TIFF_UINT[typ] * count, data))
                if tag in _IFD_POINTERS or typ in (13, 18):
                    todo.extend(o for o in values[tag] if o)
        for offsets_tag, counts_tag, what in _DATA_PAIRS:
            offsets, counts = values.get(offsets_tag, []), values.get(counts_tag, [])
            for k, off in enumerate(offsets):
                end = off + (counts[k] if k < len(counts) else 1)
                if end > f.size:
                    return f"TIFF {what} {k} runs past the end (not written yet)"
        nxt = struct.unpack(bo + off_fmt, table[n * ent_size :])[0]
        if nxt:
            todo.append(nxt)
    return None


_CHECKS = {PDF: _check_pdf, JPEG: _check_jpeg, PNG: _check_png, TIFF: _check_tiff}
_COMPLETE = {
    PDF: "PDF ends with %%EOF, its cross-reference chain loads and lists objects that are there",
    JPEG: "JPEG ends with its EOI marker",
    PNG: "PNG ends with its IEND chunk",
    TIFF: "TIFF image directories and image data lie inside the file",
}
