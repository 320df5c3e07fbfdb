"""Is a settled scan complete? Content checks for PDF, JPEG, PNG and TIFF (issue 8).

Quiet time alone is no proof: a network scanner writing a multi-page PDF over SMB pauses
between pages. After the settle window the daemon asks ``check(path)``; a file of a known
format is taken only when its own structure says the writer reached the end.

What counts as the end (the name of a file never matters, only its first bytes):

* PDF (PDF 1.7 §7.5.4-7.5.6): the file ends with ``%%EOF`` (then only PDF white-space,
  which includes NUL); the ``startxref`` just before it points inside the file at a
  cross-reference section or stream; and pypdf loads that cross-reference chain and the
  document catalog without having to repair anything. Judging by the real end means an
  incremental update still being appended (an old ``%%EOF`` followed by more bytes) is
  incomplete.
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
import functools
import io
import logging
import os
import re
import stat
import struct
from dataclasses import dataclass
from typing import Any

PDF, JPEG, PNG, TIFF = "pdf", "jpeg", "png", "tiff"

HEAD = 64 * 1024  # one read covers the header structures of almost every scan
SMALL_PDF = 256 * 1024  # up to this size pypdf gets the whole file in memory
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
_STARTXREF = re.compile(rb"startxref[\x00\t\n\x0c\r ]+(\d{1,15})[\x00\t\n\x0c\r ]*%%EOF\Z")
_OBJ_HEADER = re.compile(rb"\d{1,10}[\x00\t\n\x0c\r ]+\d{1,5}[\x00\t\n\x0c\r ]*obj")
# An object header at an xref offset; a few bytes of slack as readers allow (PDF 1.7 §7.3.10).
_OBJ_AT = re.compile(rb"[\x00\t\n\x0c\r ]{0,4}" + _OBJ_HEADER.pattern)


def _check_pdf(f: _File) -> str | None:
    # The cheap tail check first: only a file that ends like a finished PDF reaches pypdf.
    start, tail = f.tail(PDF_TAIL)
    body = tail.rstrip(PDF_WS)
    if not body.endswith(b"%%EOF"):
        if b"%%EOF" in tail:
            return "PDF has data after its last %%EOF (an update is still being appended)"
        return "PDF has no %%EOF at its end yet"
    m = _STARTXREF.search(body)
    if m is None:
        return "PDF ends with %%EOF but no startxref offset precedes it"
    offset = int(m.group(1))
    if not 0 < offset < start + m.start():
        return f"PDF startxref {offset} does not point inside the file"
    # Like PDF readers, tolerate an offset a few bytes off, but something real must be there.
    near = f.at(max(0, offset - 16), 48)
    if b"xref" not in near and _OBJ_HEADER.search(near) is None:
        return f"PDF startxref {offset} does not point at a cross-reference section"
    return _pdf_loads(f)


class _Damaged(BaseException):  # noqa: N818 - BaseException: pypdf's `except Exception` must not swallow it
    """Raised from inside pypdf where, in non-strict mode, it would quietly repair the file."""


@functools.cache
def _reader_class() -> Any:
    from pypdf import PdfReader  # lazy: only PDFs that pass the tail check pay the import

    # pypdf reports what it would repair as stdlib-logging warnings; naskahd's verdict
    # already says it, and unconfigured stdlib logging would print them as stray stderr
    # lines between the daemon's JSON log lines.
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    class Reader(PdfReader):  # type: ignore[misc]
        # Non-strict pypdf rebuilds a broken cross-reference table by scanning the whole
        # file, and drops xref entries that point at nothing: right for reading damaged
        # files, wrong for deciding whether a writer has finished. Both go through these.
        def _rebuild_xref_table(self, stream: Any) -> None:
            raise _Damaged("its cross-reference table does not match the file")

        def read_object_header(self, stream: Any) -> tuple[int, int]:
            try:
                return super().read_object_header(stream)  # type: ignore[no-any-return]
            except ValueError:
                raise _Damaged(f"an object its cross-reference table lists is missing (offset {stream.tell()})") from None

    return Reader


def _pdf_loads(f: _File) -> str | None:
    """pypdf loads the whole cross-reference chain, every object it lists is there, the catalog resolves."""
    try:
        from pypdf.generic import DictionaryObject

        # A small file is read whole (one pread; BytesIO is pypdf's fastest stream); a large
        # one through a buffered pread view, so only the parts pypdf visits are read.
        if f.size <= SMALL_PDF:
            stream: io.IOBase = io.BytesIO(f.at(0, f.size))
        else:
            stream = io.BufferedReader(_PreadRaw(f.fd, f.size), 4096)
        reader = _reader_class()(stream, strict=False)
        # Every object the chain lists must be where it says: a zero-filled hole (a
        # pre-allocated file written out of order) or an offset past the end is unfinished.
        for generation, entries in reader.xref.items():
            if generation == 65535:
                continue
            for number, offset in entries.items():
                if offset and _OBJ_AT.match(f.at(offset, 40)) is None:
                    return f"PDF object {number} is not at its offset {offset} yet"
        if reader.is_encrypted:
            return None  # the catalog's strings need a key; the xref chain loaded intact
        root = reader.trailer.get("/Root")
        if not isinstance(root.get_object() if root is not None else None, DictionaryObject):
            return "PDF has no document catalog yet"
    except _Damaged as exc:
        return f"PDF is not whole yet: {exc}"
    except RecursionError:
        return "PDF cannot be read: its structure is too deeply nested"
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not (yet) a whole PDF"
        return f"PDF cannot be read yet: {type(exc).__name__}: {str(exc)[:120]}"
    return None


class _PreadRaw(io.RawIOBase):
    """A read-only file object over the first ``size`` bytes of ``fd``, by pread (fd offset untouched)."""

    def __init__(self, fd: int, size: int) -> None:
        super().__init__()
        self._fd, self._size, self._pos = fd, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError(22, "negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos


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
    PDF: "PDF ends with %%EOF and its cross-reference chain loads",
    JPEG: "JPEG ends with its EOI marker",
    PNG: "PNG ends with its IEND chunk",
    TIFF: "TIFF image directories and image data lie inside the file",
}
