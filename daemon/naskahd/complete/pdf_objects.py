"""A small reader for PDF objects (PDF 1.7 §7.3): enough for trailers, stream dictionaries,
cross-reference and object stream data. Names become str ("/Root"), strings bytes, numbers
int/float, arrays list, dictionaries dict, references Ref."""

from __future__ import annotations

import itertools
import re
import zlib
from dataclasses import dataclass
from typing import Any

from naskahd.i18n import N_

from .base import Bad, File

# White-space inside the structure. NUL is PDF white-space too (§7.2.2), but no writer puts
# it there: inside a trailer, a table or a header it is a hole not written yet.
WS = rb"[\t\n\x0c\r ]"
OBJ_HEADER = re.compile(rb"(\d{1,10})" + WS + rb"+(\d{1,5})" + WS + rb"+obj")
# An object header at an xref offset; a few bytes of slack as readers allow (PDF 1.7 §7.3.10).
OBJ_AT = re.compile(WS + rb"{0,4}" + OBJ_HEADER.pattern)
_STREAM_KW = re.compile(WS + rb"*stream(?:\r\n|\n|\r)")
_ENDSTREAM = re.compile(WS + rb"*endstream")
_TOKEN = re.compile(rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]+")  # regular characters (§7.2.2)
_HEX = re.compile(rb"[0-9A-Fa-f\t\n\x0c\r ]*")
_DELIM = rb"(?=[\x00\t\n\x0c\r ()<>\[\]{}/%])"
_INT = re.compile(rb"[+-]?\d{1,30}" + _DELIM)
_REF = re.compile(rb"(\d{1,10})" + WS + rb"+(\d{1,5})" + WS + rb"+R" + _DELIM)
_SKIP = re.compile(rb"(?:[\t\n\x0c\r ]+|%[^\r\n]*)*")
MAX_PDF_DICT = 1024 * 1024  # a trailer or stream dictionary larger than this is not a scan's
MAX_DECODED = 64 * 1024 * 1024  # cross-reference and object stream data decoded at most
SYNC_FLUSH = b"\x00\x00\xff\xff"  # zlib Z_SYNC_FLUSH: a writer that never wrote the final block


class Short(Exception):
    """The parser ran past the bytes it was given."""


@dataclass(frozen=True)
class Ref:
    num: int
    gen: int


class Junk:
    """A token a lenient reader skips (in a trailer: junk tokens some writers leave)."""


def parse_at(f: File, pos: int, with_end: bool = False) -> Any:
    n = 512
    while True:
        buf = f.at(pos, n)
        try:
            value, end = parse(buf, 0, 0)
        except Short:
            if len(buf) < n or n >= MAX_PDF_DICT:
                raise Bad(N_("an object at byte {offset} is cut off"), offset=pos) from None
            n *= 8
            continue
        return (value, pos + end) if with_end else value


def _skip(buf: bytes, i: int) -> int:
    i = _SKIP.match(buf, i).end()  # type: ignore[union-attr]
    if i >= len(buf):
        raise Short
    if buf[i] == 0:
        raise Bad(N_("there are zero bytes inside its structure (a part not written yet)"))
    return i


def parse(buf: bytes, i: int, depth: int) -> tuple[Any, int]:
    if depth > 100:
        raise Bad(N_("its structure is nested too deeply"))
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
                        raise Short
                    if buf[i + 1] != 62:
                        raise Bad(N_("a dictionary is broken"))
                    return d, i + 2
                key, i = parse(buf, i, depth + 1)
                if not isinstance(key, str) or not key.startswith("/"):
                    if isinstance(key, (Junk, int, float, bool)) or key is None:
                        continue  # a stray token: readers skip it (pypdf non-strict, qpdf)
                    raise Bad(N_("a dictionary key is not a name"))
                d[key], i = parse(buf, i, depth + 1)
        if i + 1 >= len(buf):
            raise Short
        j = buf.find(b">", i)
        if j < 0:
            raise Short
        if _HEX.fullmatch(buf, i + 1, j) is None:
            raise Bad(N_("a hexadecimal string is broken (a part not written yet?)"))
        return buf[i + 1 : j], j + 1
    if c == 91:  # [
        a: list[Any] = []
        i += 1
        while True:
            i = _skip(buf, i)
            if buf[i] == 93:  # ]
                return a, i + 1
            v, i = parse(buf, i, depth + 1)
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
        raise Short
    if c == 47:  # /name
        m = _TOKEN.match(buf, i + 1)
        end = m.end() if m else i + 1
        if end == len(buf):
            raise Short
        return "/" + buf[i + 1 : end].decode("latin-1"), end
    if 48 <= c <= 57 or c in b"+-":  # a reference, or an integer (either followed by a delimiter)
        m = _REF.match(buf, i)
        if m is not None:
            return Ref(int(m.group(1)), int(m.group(2))), m.end()
        m = _INT.match(buf, i)
        if m is not None:
            return int(m.group()), m.end()
    m = _TOKEN.match(buf, i)
    if m is None:
        raise Bad(N_("there is an unexpected {byte} in an object"), byte=repr(bytes([c])))
    end = m.end()
    if end == len(buf):
        raise Short
    tok = m.group()
    if tok in (b"true", b"false"):
        return tok == b"true", end
    if tok == b"null":
        return None, end
    try:
        return float(tok), end
    except ValueError:
        if depth > 0:
            return Junk(), end
        raise Bad(N_("there is an unexpected {token} in an object"), token=repr(tok[:20])) from None


# -- streams (PDF 1.7 §7.3.8) ---------------------------------------------------------------------
def read_stream(f: File, offset: int, resolve: Any) -> tuple[dict[str, Any], bytes]:
    """The dictionary and raw data of the stream object at ``offset``. ``resolve(ref)``: the
    value of an indirect /Length, or None if that object is not known yet."""
    head = f.at(offset, 64)
    m = OBJ_AT.match(head)
    if m is None:
        raise Bad(N_("there is no object at byte {offset}"), offset=offset)
    d, end = parse_at(f, offset + m.end(), with_end=True)
    if not isinstance(d, dict):
        raise Bad(N_("the object at byte {offset} is not a stream"), offset=offset)
    s = _STREAM_KW.match(f.at(end, 32))
    if s is None:
        raise Bad(N_("the object at byte {offset} is not a stream, or it is cut off"), offset=offset)
    start = end + s.end()
    length = d.get("/Length")
    if isinstance(length, Ref):
        length = resolve(length)
    elif type(length) is not int or length < 0:
        raise Bad(N_("the stream at byte {offset} has no length"), offset=offset)
    if length is not None:
        if start + length > f.size:
            raise Bad(N_("the stream at byte {offset} runs past the end of the file"), offset=offset)
        if _ENDSTREAM.match(f.at(start + length, 32)) is None:
            raise Bad(N_("the stream at byte {offset} does not end where its length says"), offset=offset)
        return d, f.at(start, length)
    # /Length is an object not listed yet: the data runs up to endstream.
    stop = f.find(b"endstream", start)
    if stop < 0:
        raise Bad(N_("the stream at byte {offset} has no end"), offset=offset)
    if stop - start > MAX_DECODED:
        raise Bad(N_("the stream at byte {offset} is too large for a cross-reference"), offset=offset)
    return d, f.at(start, stop - start)


def decode(d: dict[str, Any], data: bytes, row: int, offset: int, rows: int = 0) -> bytes:
    """/FlateDecode (or no filter) and the predictors of PDF 1.7 §7.4.4.4. Flate data that
    ends in a sync flush without a final block is read when it holds ``rows`` rows."""
    filters = d.get("/Filter")
    parms = d.get("/DecodeParms")
    if isinstance(filters, list):
        if len(filters) > 1:
            raise Bad(N_("the stream at byte {offset} has a chain of filters this check does not read"), offset=offset)
        filters = filters[0] if filters else None
        parms = parms[0] if isinstance(parms, list) and parms else parms
    if filters is None:
        return data
    if filters not in ("/FlateDecode", "/Fl"):
        raise Bad(N_("the stream at byte {offset} has filter {filter} this check does not read"), offset=offset, filter=filters)
    z = zlib.decompressobj()
    try:
        out = z.decompress(data, MAX_DECODED)
    except zlib.error:
        raise Bad(N_("the stream at byte {offset} does not decompress"), offset=offset) from None
    parms = parms if isinstance(parms, dict) else {}
    predictor = parms.get("/Predictor", 1)
    if not z.eof:
        # Acrobat's incremental save: a sync flush, no final block, every row there.
        width = row + (1 if isinstance(predictor, int) and predictor >= 10 else 0)
        if not data.rstrip(b"\r\n").endswith(SYNC_FLUSH) or z.unconsumed_tail or len(out) < rows * width:
            raise Bad(N_("the stream at byte {offset} is cut off"), offset=offset)
    if predictor == 1:
        return out
    colors, bpc, columns = parms.get("/Colors", 1), parms.get("/BitsPerComponent", 8), parms.get("/Columns", 1)
    if not all(type(x) is int and x > 0 for x in (colors, bpc, columns)):
        raise Bad(N_("the stream at byte {offset} has bad decoding parameters"), offset=offset)
    stride = (colors * bpc * columns + 7) // 8
    bpp = max(1, colors * bpc // 8)
    if predictor == 2:
        if bpc != 8:
            raise Bad(N_("the stream at byte {offset} uses a TIFF predictor this check does not read"), offset=offset)
        rows_ = [bytearray(out[i : i + stride]) for i in range(0, len(out), stride)]
        for r in rows_:
            for i in range(bpp, len(r)):
                r[i] = (r[i] + r[i - bpp]) & 0xFF
        return b"".join(rows_)
    if type(predictor) is int and 10 <= predictor <= 15:
        return _png_unpredict(out, stride, bpp, offset)
    raise Bad(N_("the stream at byte {offset} has an unknown predictor {predictor}"), offset=offset, predictor=predictor)


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
            raise Bad(N_("the stream at byte {offset} has an unknown PNG filter type {kind}"), offset=offset, kind=kind)
        out += cur
        prev = cur
    return bytes(out)
