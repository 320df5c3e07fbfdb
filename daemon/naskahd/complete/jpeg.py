"""Is a JPEG whole? (T.81 B.1, CIPA DC-007 for multi-picture files)

* The marker segments from SOI walk to a start-of-scan (SOS). Bytes between segments that
  are not a marker are skipped up to the next FF, as libjpeg does ("extraneous bytes before
  marker"), unless they are NUL bytes only (a hole not written yet).
* The file ends with EOI (FF D9) after it. Entropy-coded data cannot contain FF D9 (FF is
  stuffed as FF 00, T.81 B.1.1.5), so a truncated scan does not end in EOI by accident.
  After EOI: NUL padding, or a few bytes of junk (a camera wrote some) that are not the
  start of another picture (FF D8).
* A multi-picture file (MPO: an APP2 ``MPF`` segment in the first picture) lists every
  picture's offset and size: each must lie whole inside the file, start with SOI and end
  with EOI, so a file cut right after the first picture's EOI is incomplete.
"""

from __future__ import annotations

import struct

from naskahd.i18n import N_

from .base import File, Reason

PAD_TAIL = 64 * 1024  # trailing NUL padding looked at after EOI
JUNK_AFTER_EOI = 32  # bytes of other junk after EOI that are taken
SKIP_LIMIT = 64 * 1024  # extraneous bytes between segments skipped at most
SOI, EOI = b"\xff\xd8", b"\xff\xd9"
MAX_PICTURES = 1024


def check(f: File) -> Reason | None:
    pos, mpf = 2, None
    while True:  # T.81 B.1.1.4: after SOI, marker segments (FF xx + 2-byte length) up to SOS
        seg = f.at(pos, 4)
        if len(seg) < 2:
            return Reason.of(N_("the JPEG image ends inside its headers (no image data yet)"))
        if seg[0] != 0xFF:
            skipped = f.at(pos, SKIP_LIMIT)
            ff = skipped.find(b"\xff")
            if ff < 0 or not skipped[:ff].strip(b"\x00"):
                return Reason.of(N_("the JPEG image's marker structure is broken at byte {offset}"), offset=pos)
            pos += ff
            continue
        if seg[1] == 0xFF:  # B.1.1.2: fill bytes before a marker
            pos += 1
            continue
        marker = seg[1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length
            pos += 2
            continue
        if marker in (0xD8, 0xD9, 0x00):
            return Reason.of(N_("the JPEG image's marker structure is broken at byte {offset}"), offset=pos)
        if len(seg) < 4:
            return Reason.of(N_("the JPEG image ends inside its headers (no image data yet)"))
        length = int.from_bytes(seg[2:4], "big")
        if length < 2:
            return Reason.of(N_("the JPEG image's marker structure is broken at byte {offset}"), offset=pos)
        if marker == 0xE2 and mpf is None and f.at(pos + 4, 4) == b"MPF\x00":
            mpf = (pos + 8, length - 6)  # the MP header (a TIFF header) and its length
        pos += 2 + length
        if pos > f.size:
            return Reason.of(N_("the JPEG image ends inside its headers (no image data yet)"))
        if marker == 0xDA:  # SOS: entropy-coded data follows
            break
    start, tail = f.tail(PAD_TAIL)
    body = tail.rstrip(b"\x00")
    if not body:
        return Reason.of(N_("the JPEG image ends in zero bytes, with no end marker (EOI) yet"))
    eoi = body.rfind(EOI, max(0, len(body) - JUNK_AFTER_EOI - 2))
    junk = body[eoi + 2 :] if eoi >= 0 else b""
    if eoi < 0 or start + eoi < pos or b"\xff\xd8" in junk or SOI.startswith(junk[:2]) and junk:
        return Reason.of(N_("the JPEG image has no end marker (EOI) at its end yet"))
    return _check_pictures(f, *mpf) if mpf is not None else None


def _check_pictures(f: File, base: int, length: int) -> Reason | None:
    """CIPA DC-007 §5.2: the MP Index IFD's MP Entry tag (B002) lists every picture."""
    hdr = f.at(base, min(length, 64 * 1024))
    if len(hdr) < 8 or hdr[:4] not in (b"II*\x00", b"MM\x00*"):
        return None  # not an index this check reads: the EOI check stands
    bo = "<" if hdr[:1] == b"I" else ">"
    ifd = struct.unpack(bo + "L", hdr[4:8])[0]
    if ifd + 2 > len(hdr):
        return None
    n = struct.unpack(bo + "H", hdr[ifd : ifd + 2])[0]
    for i in range(n):
        e = hdr[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        if len(e) < 12:
            return None
        tag, _typ, count, value = struct.unpack(bo + "HHLL", e)
        if tag != 0xB002 or count % 16 or count // 16 > MAX_PICTURES:
            continue
        entries = hdr[value : value + count]
        if len(entries) < count:
            return None
        for k in range(count // 16):
            _attr, size, offset = struct.unpack(bo + "LLL", entries[16 * k : 16 * k + 12])
            begin = 0 if offset == 0 else base + offset
            if begin + size > f.size:
                return Reason.of(N_("the multi-picture JPEG file lists picture {n} of {total}, which is not written yet"),
                                 n=k + 1, total=count // 16)
            if offset and (f.at(begin, 2) != SOI or f.at(begin + size - 2, 2) != EOI):
                return Reason.of(N_("the multi-picture JPEG file's picture {n} of {total} is not whole yet"),
                                 n=k + 1, total=count // 16)
        return None
    return None
