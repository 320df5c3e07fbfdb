"""Is a TIFF whole? (TIFF 6.0 §2, and BigTIFF)

Every IFD in the chain (and SubIFD/Exif/GPS/Interop IFDs), every out-of-line tag value, and
every strip/tile (offset + byte count) lies inside the file. An image directory (the main
chain and SubIFDs) must have entries, and name its width, height and strip or tile offsets
and byte counts: an IFD of zeros, or one without them, is not written yet. An IFD reached
twice through SubIFD/Exif pointers is read once (libtiff writes such files); the main chain
coming back to an IFD is a loop.

Known limit: a TIFF pre-allocated to its final size and written in place looks whole once
its directories are written, while strip data may still be zeros; structure cannot tell.
The open-for-write probe (``naskahd.samba``) and the settle window catch that case.

Cost: one read per IFD and per out-of-line value; at most 100,000 IFDs and 1,000,000 values
per tag are read, so a 4 GiB (sparse) file costs what its directories cost.
"""

from __future__ import annotations

import struct

from naskahd.i18n import N_

from .base import File, Reason

MAX_IFDS = 100_000  # a loop or a hostile chain must not keep the check busy
MAX_VALUES = 1_000_000  # values of one tag read (strip offsets of a huge file): bounds memory
# TIFF 6.0 §2 field types (and BigTIFF's 16-18): bytes per value.
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_UINT = {1: "B", 3: "H", 4: "L", 13: "L", 16: "Q", 18: "Q"}
_DATA_PAIRS = (  # offsets, byte counts, what a person is told when one runs past the end
    (273, 279, N_("the TIFF image's strip {n} runs past the end (not written yet)")),
    (324, 325, N_("the TIFF image's tile {n} runs past the end (not written yet)")),
    (513, 514, N_("the TIFF image's thumbnail runs past the end (not written yet)")),
)
_SUBIFDS = 330
_IFD_POINTERS = {_SUBIFDS, 34665, 34853, 40965}  # SubIFDs, Exif, GPS, Interoperability
_POINTER_TAGS = _IFD_POINTERS | {t for pair in _DATA_PAIRS for t in pair[:2]}
_WIDTH, _HEIGHT = 256, 257


def check(f: File) -> Reason | None:
    hdr = f.at(0, 16)
    bo = "<" if hdr[:1] == b"I" else ">"
    big = hdr[2:4] in (b"+\x00", b"\x00+")
    if len(hdr) < (16 if big else 8):
        return Reason.of(N_("the TIFF image ends inside its header"))
    if big:  # BigTIFF: byte size 8, constant 0, 8-byte offsets; 20-byte entries, 8-byte count
        if struct.unpack(bo + "HH", hdr[4:8]) != (8, 0):
            return Reason.of(N_("the BigTIFF image's header is broken"))
        first = struct.unpack(bo + "Q", hdr[8:16])[0]
        layout = ("Q", "HHQ8s", "Q", 20, 8)
    else:
        first = struct.unpack(bo + "L", hdr[4:8])[0]
        layout = ("H", "HHL4s", "L", 12, 4)
    if first == 0:
        return Reason.of(N_("the TIFF image has no image directory yet"))
    todo: list[tuple[int, bool, bool]] = [(first, True, True)]  # (offset, in the main chain, an image)
    seen: set[int] = set()
    while todo:
        ifd, main, image = todo.pop()
        if ifd in seen:
            if main:
                return Reason.of(N_("the TIFF image's directories loop at byte {offset}"), offset=ifd)
            continue  # reached again through a SubIFD or Exif pointer: read once
        seen.add(ifd)
        if len(seen) > MAX_IFDS:
            return Reason.of(N_("the TIFF image has too many image directories"))
        why = _check_ifd(f, bo, layout, ifd, main, image, todo)
        if why is not None:
            return why
    return None


def _check_ifd(f: File, bo: str, layout: tuple, ifd: int, main: bool, image: bool,
               todo: list[tuple[int, bool, bool]]) -> Reason | None:
    cnt_fmt, ent_fmt, off_fmt, ent_size, off_size = layout
    cnt_size = struct.calcsize(cnt_fmt)
    raw = f.at(ifd, cnt_size)
    if len(raw) < cnt_size:
        return Reason.of(N_("the TIFF image's directory at byte {offset} lies past the end (not written yet)"), offset=ifd)
    n = struct.unpack(bo + cnt_fmt, raw)[0]
    if n == 0:
        return Reason.of(N_("the TIFF image's directory at byte {offset} is empty (not written yet)"), offset=ifd)
    if ifd + cnt_size + n * ent_size + off_size > f.size:
        return Reason.of(N_("the TIFF image's directory at byte {offset} runs past the end (not written yet)"), offset=ifd)
    table = f.at(ifd + cnt_size, n * ent_size + off_size)
    values: dict[int, list[int]] = {}
    tags: set[int] = set()
    for i in range(n):
        tag, typ, count, field = struct.unpack_from(bo + ent_fmt, table, i * ent_size)
        tags.add(tag)
        tsize = _TYPE_SIZE.get(typ)
        if tsize is None:
            continue  # TIFF 6.0 §2: readers skip fields of unknown type
        nbytes = tsize * count
        where = None
        if nbytes > off_size:  # the value lies elsewhere; the field holds its offset
            where = struct.unpack(bo + off_fmt, field)[0]
            if where + nbytes > f.size:
                return Reason.of(N_("the TIFF image's tag {tag} value at byte {offset} runs past the end (not written yet)"), tag=tag, offset=where)
        if typ in _UINT and (tag in _POINTER_TAGS or typ in (13, 18)):
            if count > MAX_VALUES:
                return Reason.of(N_("the TIFF image's tag {tag} lists more values than this check reads ({count})"), tag=tag, count=count)
            data = field[:nbytes] if where is None else f.at(where, nbytes)
            values[tag] = list(struct.unpack(bo + _UINT[typ] * count, data))
            if tag in _IFD_POINTERS or typ in (13, 18):
                todo.extend((o, False, tag == _SUBIFDS) for o in values[tag] if o)
    if image and not ({_WIDTH, _HEIGHT} <= tags and any(a in tags and b in tags for a, b, _ in _DATA_PAIRS[:2])):
        return Reason.of(N_("the TIFF image's directory at byte {offset} does not name the image's size and data yet"), offset=ifd)
    for offsets_tag, counts_tag, past_the_end in _DATA_PAIRS:
        offsets, counts = values.get(offsets_tag, []), values.get(counts_tag, [])
        for k, off in enumerate(offsets):
            if off + (counts[k] if k < len(counts) else 1) > f.size:
                return Reason.of(past_the_end, n=k)
    nxt = struct.unpack(bo + off_fmt, table[n * ent_size :])[0]
    if nxt:
        todo.append((nxt, main, main or image))
    return None
