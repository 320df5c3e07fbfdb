"""The cross-reference chain of a PDF (PDF 1.7 §7.5.4-7.5.8): classic tables with their
trailers, cross-reference streams, ``/Prev`` and ``/XRefStm``, the newest entry winning.

Entries (``pdf_entries``): object number -> (type, field 2, field 3) as in a cross-reference
stream (§7.5.8.3 Table 18), kept as the file's rows.

Two kinds of failure: ``Bad`` (a hole of NUL bytes, data running past the end, a stream
that does not decode: not finished) and ``Misplaced`` (a pointer that lands inside the file
but on the wrong bytes, a broken table line: damage that readers repair by searching the
file; ``pdf_repair`` does so too).
"""

from __future__ import annotations

import re
from typing import Any

from naskahd.i18n import N_

from .base import Bad, File
from .pdf_entries import Entries, _Table
from .pdf_objects import OBJ_AT, WS, Ref, decode, parse_at, read_stream

MAX_XREF_SECTIONS = 1_000  # a hostile chain must not keep the check busy
MAX_XREF_ENTRIES = 1_000_000  # entries over the whole chain (a scan has tens to thousands): bounds memory

_XREF_AT = re.compile(WS + rb"{0,4}xref")
_SUBSECTION = re.compile(WS + rb"*(\d{1,10})[ ]+(\d{1,10})" + WS + rb"*")  # "start count" (§7.5.4)
_ENTRY_LOOSE = re.compile(rb"(\d{10}) (\d{5}) ([nf])[ \t]*(?:\r\n|\r|\n)")  # 19/21-byte ones, trailing spaces
_TRAILER = re.compile(WS + rb"*(?:%[^\r\n]*[\r\n]" + WS + rb"*)*trailer")


class Misplaced(Bad):
    """A pointer inside the file lands on the wrong bytes: damaged, maybe repairable."""


def read_chain(f: File, startxref: int) -> tuple[Entries, dict[str, Any]]:
    """Every cross-reference section from ``startxref`` on: (entries, newest trailer).
    A ``/Prev`` back to a section already read ends the chain (readers stop there too)."""
    entries = Entries()
    newest: dict[str, Any] | None = None
    todo: list[int] = [startxref]
    seen: set[int] = set()
    while todo:
        offset = todo.pop()
        if offset in seen:
            continue
        seen.add(offset)
        if len(seen) > MAX_XREF_SECTIONS:
            raise Bad(N_("it has too many cross-reference sections"))
        trailer = _read_section(f, offset, entries, first=newest is None)
        if newest is None:
            newest = trailer
        prev = trailer.get("/Prev")
        if prev is not None:
            _inside(f, prev, "/Prev")
            todo.append(prev)
        stm = trailer.get("/XRefStm")  # hybrid file (§7.5.8.4): searched before /Prev
        if stm is not None:
            _inside(f, stm, "/XRefStm")
            if stm not in seen:
                seen.add(stm)
                if not OBJ_AT.match(f.at(stm, 64)):
                    raise Misplaced(N_("its /XRefStm {offset} does not point at a cross-reference stream"), offset=stm)
                read_xref_stream(f, stm, entries)
    assert newest is not None
    return entries, newest


def _inside(f: File, value: object, key: str) -> None:
    if type(value) is not int or value <= 0:
        raise Misplaced(N_("its {key} {value} is not an offset in the file"), key=key, value=repr(value))
    if value >= f.size:
        raise Bad(N_("its {key} {value} points past the end of the file (the rest is not written yet)"), key=key, value=value)


def _read_section(f: File, offset: int, entries: Entries, first: bool) -> dict[str, Any]:
    near = f.at(offset, 64)
    if _XREF_AT.match(near):
        return _read_table(f, offset + near.index(b"xref") + 4, entries)
    if OBJ_AT.match(near):
        return read_xref_stream(f, offset, entries)
    if first:
        raise Misplaced(N_("its startxref {offset} does not point at a cross-reference section"), offset=offset)
    raise Misplaced(N_("its /Prev {offset} does not point at a cross-reference section"), offset=offset)


def _read_table(f: File, pos: int, entries: Entries) -> dict[str, Any]:
    """A classic table (PDF 1.7 §7.5.4), ``pos`` just after ``xref``; returns its trailer."""
    while True:
        head = f.at(pos, 48)
        m = _TRAILER.match(head)
        if m:
            break
        m = _SUBSECTION.match(head)
        if m is None or m.end() == len(head):
            _broken_table(head, pos)
        number, count = int(m.group(1)), int(m.group(2))
        if entries.total + count > MAX_XREF_ENTRIES:
            raise Bad(N_("it lists too many objects"))
        pos += m.end()
        block = f.at(pos, 20 * count)
        if _Table.valid(block, count):
            entries.add_table(number, count, block)
            pos += 20 * count
        else:  # entries of 19 or 21 bytes (non-conforming, common enough): one by one
            block = f.at(pos, 24 * count + 24)
            at = 0
            rows = []  # kept as 20-byte rows: a big table of them costs its bytes
            for _ in range(count):
                e = _ENTRY_LOOSE.match(block, at)
                if e is None:
                    _broken_table(block[at : at + 24], pos + at)
                rows.append(e.group(1) + b" " + e.group(2) + b" " + e.group(3) + b" \n")
                at = e.end()
            entries.add_table(number, count, b"".join(rows))
            pos += at
    trailer = parse_at(f, pos + m.end())
    if not isinstance(trailer, dict):
        raise Misplaced(N_("its trailer is not a dictionary"))
    return trailer


def _broken_table(near: bytes, pos: int) -> None:
    if len(near) < 20 or b"\x00" in near:
        raise Bad(N_("its cross-reference table is cut off at byte {offset}"), offset=pos)
    raise Misplaced(N_("its cross-reference table is broken at byte {offset}"), offset=pos)


def read_xref_stream(f: File, offset: int, entries: Entries) -> dict[str, Any]:
    """A cross-reference stream (PDF 1.7 §7.5.8); returns its dictionary (the trailer)."""
    d, data = read_stream(f, offset, lambda ref: resolve_int(f, ref, entries))
    if d.get("/Type") != "/XRef":
        raise Misplaced(N_("the object at byte {offset} is not a cross-reference stream"), offset=offset)
    size, w = d.get("/Size"), d.get("/W")
    if type(size) is not int or size < 0:
        raise Bad(N_("the cross-reference stream at byte {offset} has no /Size"), offset=offset)
    if not (isinstance(w, list) and len(w) == 3 and all(type(x) is int and 0 <= x <= 8 for x in w)) or sum(w) == 0:
        raise Bad(N_("the cross-reference stream at byte {offset} has a bad /W"), offset=offset)
    index = d.get("/Index", [0, size])
    if not (isinstance(index, list) and len(index) % 2 == 0 and all(type(x) is int and x >= 0 for x in index)):
        raise Bad(N_("the cross-reference stream at byte {offset} has a bad /Index"), offset=offset)
    total = sum(index[1::2])
    if entries.total + total > MAX_XREF_ENTRIES:
        raise Bad(N_("it lists too many objects"))
    row = sum(w)
    data = decode(d, data, row, offset, rows=total)
    if len(data) < total * row:
        raise Bad(N_("the cross-reference stream at byte {offset} holds fewer entries than it lists"), offset=offset)
    data = data[: total * row]
    types = data[0 :: row] if w[0] == 1 else None
    if types is not None and types.translate(None, b"\x00\x01\x02") or w[0] > 1 and any(
            int.from_bytes(data[k : k + w[0]], "big") > 2 for k in range(0, len(data), row)):
        # §7.5.8.3 reads them as null; no writer makes them
        raise Bad(N_("the cross-reference stream at byte {offset} has an entry of unknown type"), offset=offset)
    entries.add_rows([(index[k], index[k + 1]) for k in range(0, len(index), 2)], data, w)
    return d


def resolve_int(f: File, ref: Ref, entries: Entries) -> int | None:
    """An indirect stream /Length through the entries already read (None: not listed yet)."""
    entry = entries.get(ref.num)
    if entry is None or entry[0] != 1:
        return None
    m = OBJ_AT.match(f.at(entry[1], 64))
    if m is None or int(m.group(1)) != ref.num:
        raise Misplaced(N_("object {num} (a stream length) is not at its offset {offset}"), num=ref.num, offset=entry[1])
    value = parse_at(f, entry[1] + m.end())
    if type(value) is not int or value < 0:
        raise Bad(N_("object {num} (a stream length) is not a length"), num=ref.num)
    return value
