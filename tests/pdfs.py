"""Hand-built PDFs for the completeness tests: the cross-reference forms pypdf's writer
does not produce (cross-reference streams with PNG predictors, object streams, hybrid
files, an indirect stream /Length, odd table line ends), PDF 1.7 §7.5.4-7.5.8."""

from __future__ import annotations

import re
import zlib

HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


def page_tree(n_pages: int = 2, first: int = 1) -> dict[int, bytes]:
    """Catalog ``first``, pages ``first+1``, then per page a page and a content object."""
    pages = first + 1
    objs = {first: b"<< /Type /Catalog /Pages %d 0 R >>" % pages}
    kids = []
    for k in range(n_pages):
        page, content = first + 2 + 2 * k, first + 3 + 2 * k
        kids.append(b"%d 0 R" % page)
        objs[page] = b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R >>" % (pages, content)
        text = b"BT /F1 12 Tf 72 %d Td (page %d \\(with parens\\) >> <<) Tj ET" % (700 - k, k)
        objs[content] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text)
    objs[pages] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), n_pages)
    return objs


def startxref(data: bytes) -> int:
    return int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*\Z", data).group(1))


def _png_rows(rows: list[bytes], kinds: list[int]) -> bytes:
    """PNG-filter each row (bpp 1) with the filter type chosen for it (PNG spec §9.2)."""
    out = bytearray()
    prev = bytes(len(rows[0])) if rows else b""
    for r, row in enumerate(rows):
        kind = kinds[r % len(kinds)]
        enc = bytearray()
        for i, x in enumerate(row):
            a = row[i - 1] if i else 0
            b = prev[i]
            c = prev[i - 1] if i else 0
            if kind == 0:
                p = 0
            elif kind == 1:
                p = a
            elif kind == 2:
                p = b
            elif kind == 3:
                p = (a + b) // 2
            else:
                q = a + b - c
                pa, pb, pc = abs(q - a), abs(q - b), abs(q - c)
                p = a if pa <= pb and pa <= pc else b if pb <= pc else c
            enc.append((x - p) & 0xFF)
        out += bytes([kind]) + enc
        prev = row
    return bytes(out)


def build(
    objects: dict[int, bytes],
    *,
    root: int = 1,
    xref: str = "table",  # "table" | "stream" | "hybrid"
    compressed: tuple[int, ...] = (),  # object numbers to put in one object stream
    predictor: int | None = 12,  # None: no /DecodeParms; 2 TIFF; 10-15 PNG
    png_kinds: tuple[int, ...] = (2,),  # PNG filter type per row (cycled)
    length_ref: bool = False,  # object stream /Length as an indirect object written after it
    xref_length_ref: bool = False,  # cross-reference stream /Length indirect (pypdf cannot read it)
    eol: bytes = b" \n",  # table entry line end: b" \n", b" \r", b"\r\n", or b"\n" (19-byte)
    base: bytes = b"",  # append an incremental update to this file
    size: int | None = None,
    extra_trailer: bytes = b"",
) -> bytes:
    out = bytearray(base or HEADER)
    prev = startxref(base) if base else None
    entries: dict[int, tuple[int, int, int]] = {}
    nxt = max(objects) + 1 if size is None else size

    def new_number() -> int:
        nonlocal nxt
        nxt += 1
        return nxt - 1

    def put(num: int, body: bytes) -> None:
        entries[num] = (1, len(out), 0)
        out.extend(b"%d 0 obj\n%s\nendobj\n" % (num, body))

    def stream(num: int, dictionary: bytes, data: bytes) -> None:
        if length_ref:
            lnum = new_number()
            put(num, b"<< %s /Length %d 0 R >>\nstream\n%s\nendstream" % (dictionary, lnum, data))
            put(lnum, b"%d" % len(data))
        else:
            put(num, b"<< %s /Length %d >>\nstream\n%s\nendstream" % (dictionary, len(data), data))

    for num in sorted(objects):
        if num not in compressed:
            put(num, objects[num])
    if compressed:
        host = new_number()
        head, body = [], bytearray()
        for k, num in enumerate(compressed):
            head.append(b"%d %d" % (num, len(body)))
            body += objects[num] + b"\n"
            entries[num] = (2, host, k)
        head_b = b" ".join(head) + b"\n"
        stream(host, b"/Type /ObjStm /N %d /First %d /Filter /FlateDecode" % (len(compressed), len(head_b)),
               zlib.compress(head_b + bytes(body)))
    total = max(nxt, max(entries) + 1)

    def index_runs(nums: list[int]) -> list[tuple[int, int]]:
        runs: list[tuple[int, int]] = []
        for n in nums:
            if runs and runs[-1][0] + runs[-1][1] == n:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((n, 1))
        return runs

    def xref_stream(listed: dict[int, tuple[int, int, int]], prev_at: int | None, trailer_keys: bool) -> int:
        num = new_number()
        listed = dict(listed)
        lnum = None
        if xref_length_ref:  # written first (fixed width) so the stream's own entries list it
            lnum = new_number()
            listed[lnum] = (1, len(out), 0)
            lnum_size = len(b"%d 0 obj\n%010d\nendobj\n" % (lnum, 0))
        at = len(out) + (lnum_size if xref_length_ref else 0)
        listed[num] = (1, at, 0)
        if not base and trailer_keys:
            listed.setdefault(0, (0, 0, 65535))
        nums = sorted(listed)
        rows = [bytes([listed[n][0]]) + listed[n][1].to_bytes(4, "big") + listed[n][2].to_bytes(2, "big") for n in nums]
        d = b"/Type /XRef /Size %d /W [1 4 2] /Index [%s]" % (
            max(total, num + 1), b" ".join(b"%d %d" % r for r in index_runs(nums)))
        if trailer_keys:
            d += b" /Root %d 0 R %s" % (root, extra_trailer)
            if prev_at is not None:
                d += b" /Prev %d" % prev_at
        if predictor is None:
            data = b"".join(rows)
        elif predictor == 2:  # TIFF: each byte minus the one before it in the row
            data = b"".join(bytes((r[i] - (r[i - 1] if i else 0)) & 0xFF for i in range(len(r))) for r in rows)
            d += b" /DecodeParms << /Predictor 2 /Columns 7 >>"
        else:
            data = _png_rows(rows, list(png_kinds))
            d += b" /DecodeParms << /Predictor %d /Columns 7 >>" % predictor
        data = zlib.compress(data)
        if lnum is None:
            put(num, b"<< %s /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (d, len(data), data))
        else:
            put(lnum, b"%010d" % len(data))
            put(num, b"<< %s /Filter /FlateDecode /Length %d 0 R >>\nstream\n%s\nendstream" % (d, lnum, data))
        assert entries[num][1] == at
        return at

    if xref == "stream":
        at = xref_stream(entries, prev, True)
    else:
        hidden_at = None
        table_entries = entries
        if xref == "hybrid":
            hidden = {n: e for n, e in entries.items() if e[0] == 2}
            table_entries = {n: e for n, e in entries.items() if e[0] == 1}
            hidden_at = xref_stream(hidden, None, False)
            table_entries.update({n: e for n, e in entries.items() if e[0] == 1})
        at = len(out)
        out += b"xref\n"
        listed = dict(table_entries)
        if not base:
            listed.setdefault(0, (0, 0, 65535))
        for start, count in index_runs(sorted(listed)):
            out += b"%d %d\n" % (start, count)
            for n in range(start, start + count):
                t, off, gen = listed[n]
                out += b"%010d %05d %s%s" % (off, gen, b"n" if t == 1 else b"f", eol)
        out += b"trailer\n<< /Size %d /Root %d 0 R %s" % (max(total, nxt), root, extra_trailer)
        if prev is not None:
            out += b" /Prev %d" % prev
        if hidden_at is not None:
            out += b" /XRefStm %d" % hidden_at
        out += b" >>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % at
    return bytes(out)
