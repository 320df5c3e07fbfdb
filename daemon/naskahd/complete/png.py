"""Is a PNG whole? (PNG spec §5): the chunk chain from the signature walks intact to IEND,
with IEND's fixed CRC. After IEND: NUL padding (some devices pad to a block size) and line
ends or spaces that some writers add, nothing else."""

from __future__ import annotations

from naskahd.i18n import N_

from .base import File, Reason
from .sniff import PNG_SIGNATURE

PNG_IEND_CRC = b"\xaeB`\x82"  # CRC-32 of b"IEND" (no data): constant
PAD_TAIL = 64 * 1024  # trailing padding looked at after IEND
TRAILING = b"\x00\t\n\r \x1a"  # what readers ignore after IEND (padding, a line end, a Ctrl-Z)


def check(f: File) -> Reason | None:
    # PNG §5.3: chunk = length (4, <= 2^31-1) + type (4 letters) + data + CRC (4).
    pos = len(PNG_SIGNATURE)
    first = True
    while True:
        hdr = f.at(pos, 8)
        if len(hdr) < 8:
            return Reason.of(N_("the PNG image has no end chunk (IEND) yet"))
        length, ctype = int.from_bytes(hdr[:4], "big"), hdr[4:8]
        if length > 0x7FFFFFFF or not ctype.isalpha() or (first and ctype != b"IHDR"):
            return Reason.of(N_("the PNG image's chunk structure is broken at byte {offset}"), offset=pos)
        first = False
        end = pos + 12 + length
        if end > f.size:
            return Reason.of(N_("the PNG image ends inside a {chunk} chunk (no IEND yet)"), chunk=ctype.decode("ascii"))
        if ctype == b"IEND":
            if length != 0 or f.at(pos + 8, 4) != PNG_IEND_CRC:
                return Reason.of(N_("the PNG image's end chunk (IEND) is damaged"))
            if end < f.size and f.end_without(TRAILING, PAD_TAIL) != end:
                return Reason.of(N_("there is data after the PNG image's end chunk (IEND)"))
            return None
        pos = end
