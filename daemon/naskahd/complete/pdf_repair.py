"""A damaged PDF, opened by repair: find the objects by searching the file, as readers do.

Reached only when the file's tail is intact (``%%EOF`` after a ``startxref`` line at its
end) and yet a pointer inside it lands on the wrong bytes (``startxref`` a few bytes off,
offsets shifted by an editor or by junk before ``%PDF-``, a subsection numbered from 1, an
xref stream's own entry wrong). Truncation never does that: it leaves offsets pointing past
the end of what was written, and no ``%%EOF`` at the end. pypdf (non-strict) rebuilds its
table by searching for ``N G obj``; qpdf reconstructs the same way. So does this, in one
linear pass read a piece at a time:

* text is everything outside stream data (``stream`` EOL .. ``endstream``); a run of four
  NUL bytes in it is a hole not written yet (a pre-allocated file written out of order):
  incomplete, never repaired;
* every ``N G obj`` in the text is an object (the last one of a number wins); the newest
  ``trailer`` (else the newest cross-reference stream, else a ``/Type /Catalog`` object)
  names the catalog, which must be found and parse as a dictionary, directly or in an object
  stream, and so must its page tree root.
"""

from __future__ import annotations

import re
from typing import Any

from naskahd.i18n import N_

from .base import CHUNK, Bad, File, Reason
from .pdf_objects import OBJ_HEADER, WS, Ref, Short, decode, parse, parse_at, read_stream

_HEADER_BEFORE = re.compile(rb"(?<![0-9])" + OBJ_HEADER.pattern)
_HEADER_END = re.compile(rb"(?<![0-9])\d{1,10}" + WS + rb"+\d{1,5}" + WS + rb"+\Z")
_STREAM = re.compile(rb"(?<![A-Za-z])stream(?:\r\n|\n|\r)")
_TRAILER = re.compile(rb"(?<![A-Za-z])trailer" + WS + rb"*<<")
_XREF_TYPE = re.compile(rb"/Type" + WS + rb"*/XRef(?![A-Za-z])")
_CATALOG_TYPE = re.compile(rb"/Type" + WS + rb"*/Catalog(?![A-Za-z])")
_OBJSTM_TYPE = re.compile(rb"/Type" + WS + rb"*/ObjStm(?![A-Za-z])")
HOLE = b"\x00\x00\x00\x00"
OVERLAP = 64  # the longest token searched for fits in it
MAX_OBJECT_STREAMS = 200  # object streams opened to find the catalog


class Found:
    def __init__(self) -> None:
        self.objects: dict[int, tuple[int, int]] = {}  # num -> (offset, gen), the last one wins
        self.trailers: list[int] = []  # offsets of "trailer"
        self.xref_streams: list[int] = []  # object numbers whose dictionary says /Type /XRef
        self.catalogs: list[int] = []
        self.object_streams: list[int] = []
        self.last_header: int | None = None  # the number of the object whose text we are in


def scan(f: File, start: int, end: int) -> Found:
    """One pass over [start, end): objects, trailers, typed dictionaries; raises Bad on a hole."""
    found = Found()
    pos = start
    while pos < end:
        s = _find_stream(f, pos, end)
        text_end = end if s is None else s[0]
        _text(f, pos, text_end, found)
        if s is None:
            break
        stop = f.find(b"endstream", s[1], end)
        if stop < 0 or _object_inside(f, s[1], stop):
            raise Bad(N_("a stream at byte {offset} has no end"), offset=s[0])
        pos = stop + len(b"endstream")
    return found


def _object_inside(f: File, start: int, stop: int) -> bool:
    """Does ``endobj`` or ``N G obj`` occur in [start, stop)? In stream data that means its
    ``endstream`` is missing (a hole), and the ``endstream`` found belongs to a later stream.
    (By chance in binary data: about once in 10^13 bytes.)"""
    at = f.find(b"obj", start, stop)
    while at >= 0:
        before = f.at(max(start, at - 17), min(17, at - start))
        if before.endswith(b"end") or _HEADER_END.search(before):
            return True
        at = f.find(b"obj", at + 3, stop)
    return False


def _find_stream(f: File, pos: int, end: int) -> tuple[int, int] | None:
    """(where the keyword ``stream`` starts, where its data starts), or None."""
    while pos < end:
        piece = f.at(pos, min(CHUNK, end - pos))
        m = _STREAM.search(piece)
        if m is not None and (m.end() < len(piece) or pos + len(piece) >= end):
            return pos + m.start(), pos + m.end()
        if pos + len(piece) >= end:
            return None
        pos += max(1, len(piece) - OVERLAP)
    return None


def _text(f: File, start: int, end: int, found: Found) -> None:
    pos = start
    while pos < end:
        n = min(CHUNK, end - pos)
        back = 1 if pos > start else 0  # the byte before: a header's number starts after a non-digit
        piece = f.at(pos - back, back + n + (OVERLAP if pos + n < end else 0))
        limit = back + n  # matches starting before this belong to this piece
        hole = piece.find(HOLE, back, min(len(piece), limit + len(HOLE) - 1))
        if hole >= 0:
            raise Bad(N_("there are zero bytes at byte {offset}, where the text of its structure belongs (a part not written yet)"), offset=pos - back + hole)
        marks = [(m.start(), 0, m) for m in _HEADER_BEFORE.finditer(piece, back)]
        marks += [(m.start(), k, m) for k, rx in ((1, _TRAILER), (2, _XREF_TYPE), (3, _CATALOG_TYPE), (4, _OBJSTM_TYPE))
                  for m in rx.finditer(piece, back)]
        for at, kind, m in sorted(marks, key=lambda x: x[0]):
            if at >= limit:
                continue
            if kind == 0:
                num = int(m.group(1))
                found.objects[num] = (pos - back + at, int(m.group(2)))
                found.last_header = num
            elif kind == 1:
                found.trailers.append(pos - back + at)
                found.last_header = None
            elif found.last_header is not None:
                (found.xref_streams, found.catalogs, found.object_streams)[kind - 2].append(found.last_header)
        pos += n


def repair(f: File, start: int, end: int, trailer: dict[str, Any] | None, why: Reason) -> Reason:
    """Search [start, end) for the objects; the note to keep if the file opens, else Bad."""
    found = scan(f, start, end)
    root = trailer.get("/Root") if trailer else None
    encrypted = bool(trailer and "/Encrypt" in trailer)
    if not isinstance(root, Ref):
        root, encrypted = _newest_root(f, found)
    if root is None:
        raise Bad(N_("its document catalog cannot be found, not even by searching the file"))
    catalog = _object(f, found, root.num, encrypted)
    if catalog is None and not encrypted:
        raise Bad(N_("its document catalog (object {num}) cannot be found, not even by searching the file"), num=root.num)
    if isinstance(catalog, dict):
        pages = catalog.get("/Pages")
        if not isinstance(pages, Ref) or (_object(f, found, pages.num, encrypted) is None and not encrypted):
            raise Bad(N_("its page tree cannot be found, not even by searching the file"))
    return Reason.of(N_("damaged PDF, opened by repair (as PDF readers do): {why}"), why=why)


def _newest_root(f: File, found: Found) -> tuple[Ref | None, bool]:
    for at in reversed(found.trailers):
        try:
            d = parse_at(f, at + len(b"trailer"))
        except Bad:
            continue
        if isinstance(d, dict) and isinstance(d.get("/Root"), Ref):
            return d["/Root"], "/Encrypt" in d
    for num in reversed(found.xref_streams):
        d = _dictionary(f, found, num)
        if isinstance(d, dict) and isinstance(d.get("/Root"), Ref):
            return d["/Root"], "/Encrypt" in d
    if found.catalogs:
        num = found.catalogs[-1]
        return Ref(num, found.objects[num][1]), False
    return None, False


def _dictionary(f: File, found: Found, num: int) -> Any:
    offset, _gen = found.objects[num]
    m = OBJ_HEADER.match(f.at(offset, 32))
    if m is None:
        return None
    try:
        return parse_at(f, offset + m.end())
    except Bad:
        return None


def _object(f: File, found: Found, num: int, encrypted: bool) -> Any:
    """Object ``num``'s value (a dictionary is all that is looked at), or None if not found."""
    if num in found.objects:
        return _dictionary(f, found, num)
    if encrypted:
        return None  # object streams need the key
    for host in found.object_streams[-MAX_OBJECT_STREAMS:]:
        offset = found.objects[host][0]
        try:
            d, data = read_stream(f, offset, lambda ref: None)
            n, first = d.get("/N"), d.get("/First")
            if type(n) is not int or type(first) is not int:
                continue
            data = decode(d, data, 1, offset)
            numbers = data[:first].split()
            for k in range(min(n, len(numbers) // 2)):
                if numbers[2 * k] == b"%d" % num:
                    return parse(data, first + int(numbers[2 * k + 1]), 0)[0]
        except (Bad, Short, ValueError, IndexError):
            continue
    return None
