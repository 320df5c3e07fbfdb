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
* the newest ``trailer`` (else the newest cross-reference stream, else a ``/Type /Catalog``
  object) names the catalog; ``N G obj`` of that number (the last one in the file wins) is
  searched for, and must parse as a dictionary (directly, or in an object stream), and so
  must its page tree root. Objects are looked up by number, not all remembered: memory
  stays small whatever their number; each lookup is one more pass over the file.
"""

from __future__ import annotations

import re
from typing import Any

from naskahd.i18n import N_

from .base import CHUNK, Bad, File, Reason
from .pdf_objects import OBJ_HEADER, WS, Ref, Short, decode, parse, parse_at, read_stream

_HEADER_END = re.compile(rb"(?<![0-9])(\d{1,10})" + WS + rb"+(\d{1,5})" + WS + rb"+\Z")
# Two patterns, each starting with a literal (searched fast), not one alternation.
_TRAILER = re.compile(rb"trailer" + WS + rb"*<<")
_TYPED = re.compile(rb"/Type" + WS + rb"*/(XRef|Catalog|ObjStm)(?![A-Za-z])")
HOLE = b"\x00\x00\x00\x00"  # in text: a hole not written yet
OVERLAP = 64  # the longest token searched for fits in it
MAX_MARKS = 100_000  # typed dictionaries remembered (a scan has a handful)
MAX_OBJECT_STREAMS = 200  # object streams opened to find the catalog


class Found:
    """What one pass saw: where the trailers and the typed dictionaries are; the objects
    themselves are looked up by number when needed (``find_object``), so memory stays
    small whatever the number of objects."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.trailers: list[int] = []  # offsets of "trailer"
        self.marks: dict[bytes, list[int]] = {b"XRef": [], b"Catalog": [], b"ObjStm": []}  # offsets of /Type /X
        self.cache: dict[int, tuple[int, int] | None] = {}  # find_object's answers


def scan(f: File, start: int, end: int) -> Found:
    """One pass over [start, end): trailers, typed dictionaries; raises Bad on a hole."""
    found = Found(start, end)
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
    at = f.find(b"stream", pos, end)
    while at >= 0:
        around = f.at(at - 1, 9)
        if not around[:1].isalpha() and around[7:8] in (b"\r", b"\n"):
            return at, at + 7 + (around[7:9] == b"\r\n")
        at = f.find(b"stream", at + 6, end)
    return None


def _text(f: File, start: int, end: int, found: Found) -> None:
    pos = start
    while pos < end:
        n = min(CHUNK, end - pos)
        piece = f.at(pos, n + (OVERLAP if pos + n < end else 0))
        nul = piece.find(b"\x00", 0, n)
        while nul >= 0:  # a single NUL may sit in a binary string; four in a row are a hole
            if piece[nul : nul + len(HOLE)] == HOLE:
                raise Bad(N_("there are zero bytes at byte {offset}, where the text of its structure belongs (a part not written yet)"), offset=pos + nul)
            nul = piece.find(b"\x00", nul + 1, n)
        for rx in (_TRAILER, _TYPED):
            for m in rx.finditer(piece):
                if m.start() >= n:
                    break
                marks = found.trailers if rx is _TRAILER else found.marks[m.group(1)]
                if len(marks) < MAX_MARKS:
                    marks.append(pos + m.start())
        pos += n


def find_object(f: File, found: Found, num: int) -> tuple[int, int] | None:
    """(offset, generation) of the last ``num G obj`` in the file, or None."""
    if num in found.cache:
        return found.cache[num]
    pattern = re.compile(rb"%d" % num + WS + rb"+(\d{1,5})" + WS + rb"+obj")
    best = None
    pos = found.start
    while pos < found.end:
        n = min(CHUNK, found.end - pos)
        back = 1 if pos > found.start else 0
        piece = f.at(pos - back, back + n + (OVERLAP if pos + n < found.end else 0))
        for m in pattern.finditer(piece, back):
            if m.start() >= back + n:
                break
            if not piece[m.start() - 1 : m.start()].isdigit() or m.start() == 0:
                best = (pos - back + m.start(), int(m.group(1)))
        pos += n
    if len(found.cache) < 64:
        found.cache[num] = best
    return best


def _owner(f: File, at: int) -> int | None:
    """The number of the object whose dictionary holds the byte at ``at``."""
    before = f.at(max(0, at - 4096), min(at, 4096))
    i = before.rfind(b"obj")  # the nearest: this object's header (an "endobj": in no object)
    m = _HEADER_END.search(before, 0, i) if i >= 0 else None
    return int(m.group(1)) if m is not None else None


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
    for at in reversed(found.marks[b"XRef"]):
        num = _owner(f, at)
        d = None if num is None else _dictionary(f, found, num)
        if isinstance(d, dict) and isinstance(d.get("/Root"), Ref):
            return d["/Root"], "/Encrypt" in d
    for at in reversed(found.marks[b"Catalog"]):
        num = _owner(f, at)
        where = None if num is None else find_object(f, found, num)
        if where is not None:
            return Ref(num, where[1]), False  # type: ignore[arg-type]
    return None, False


def _dictionary(f: File, found: Found, num: int) -> Any:
    where = find_object(f, found, num)
    if where is None:
        return None
    m = OBJ_HEADER.match(f.at(where[0], 32))
    if m is None:
        return None
    try:
        return parse_at(f, where[0] + m.end())
    except Bad:
        return None


def _object(f: File, found: Found, num: int, encrypted: bool) -> Any:
    """Object ``num``'s value (a dictionary is all that is looked at), or None if not found."""
    if find_object(f, found, num) is not None:
        return _dictionary(f, found, num)
    if encrypted:
        return None  # object streams need the key
    for at in found.marks[b"ObjStm"][-MAX_OBJECT_STREAMS:]:
        host = _owner(f, at)
        where = None if host is None else find_object(f, found, host)
        if where is None:
            continue
        try:
            d, data = read_stream(f, where[0], lambda ref: None)
            n, first = d.get("/N"), d.get("/First")
            if type(n) is not int or type(first) is not int:
                continue
            data = decode(d, data, 1, where[0])
            numbers = data[:first].split()
            for k in range(min(n, len(numbers) // 2)):
                if numbers[2 * k] == b"%d" % num:
                    return parse(data, first + int(numbers[2 * k + 1]), 0)[0]
        except (Bad, Short, ValueError, IndexError):
            continue
    return None
