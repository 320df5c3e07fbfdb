"""Is a PDF whole? (PDF 1.7 §7.5): its tail, then its cross-reference chain and the objects
it lists; a damaged file whose tail is intact is opened by repair as readers do.

1. The tail. After the last ``%%EOF`` there may be white-space and NUL padding (up to 1 MiB
   looked at), and a little junk that readers skip (a Ctrl-Z, a line of garbage: at most
   1 KiB, no PDF keyword in it, no line starting with a digit or ``%``, because that is how
   an incremental update still being appended starts). Before it, a ``startxref N`` line.
2. The strict reading (``pdf_xref``), fast: the chain from N, every in-use entry (all up to
   2,000, else a spread sample plus the last 500 by offset) at ``N G obj`` of that object,
   object streams listed, the catalog (and ``/Encrypt``) there and a dictionary.
3. If a pointer lands inside the file on the wrong bytes (``pdf_xref.Misplaced``), the
   file is damaged, not unfinished: ``pdf_repair`` searches it; taken with a note.
"""

from __future__ import annotations

import re
from typing import Any

from naskahd.i18n import N_

from .base import PDF_WS, Bad, File, Reason
from .pdf_objects import OBJ_AT, WS, Ref, Short, decode, parse, parse_at, read_stream
from .pdf_repair import repair
from .pdf_entries import Entries
from .pdf_xref import Misplaced, read_chain, resolve_int

PDF_TAIL = 1024  # PDF 1.7 §7.5.5: %%EOF (and startxref) within the last 1024 bytes
PAD_LIMIT = 1024 * 1024  # white-space and NUL padding after %%EOF looked through
JUNK_LIMIT = 1024  # bytes of junk after %%EOF that readers skip
MAX_OBJECTS_CHECKED = 2_000  # object headers checked: all up to this, else a spread sample
LAST_OBJECTS_CHECKED = 500  # ... which always includes the last ones the file holds
_STARTXREF = re.compile(rb"(?<![A-Za-z])startxref" + WS + rb"*(\d{1,15})" + WS + rb"*\Z")
_NOT_JUNK = re.compile(rb"obj|xref|trailer|stream|%%EOF|(?:\A|[\r\n])[\t\x0c ]*[0-9%]")


def check(f: File, header_at: int) -> tuple[Reason | None, Reason | None]:
    """(why it is not complete or None, the note of a damaged file opened by repair or None)."""
    try:
        eof_end, startxref = _tail(f, header_at)
    except Bad as exc:
        return exc.reason, None
    trailer: dict[str, Any] | None = None
    try:
        entries, trailer = read_chain(f, startxref)
        _check_objects(f, entries, trailer)
        return None, None
    except Misplaced as exc:
        why = exc.reason
    except Bad as exc:
        return exc.reason, None
    except RecursionError:
        return Reason.of(N_("its structure is nested too deeply to be read")), None
    except (ValueError, IndexError, TypeError, KeyError, OverflowError) as exc:  # odd bytes: not a whole PDF (yet)
        return Reason.of(N_("its structure cannot be read ({error})"), error=type(exc).__name__), None
    try:
        return None, repair(f, header_at, eof_end, trailer, why)
    except Bad as exc:
        return why, None  # the strict reading's reason says more; the repair's: exc.reason
    except (RecursionError, ValueError, IndexError, TypeError, KeyError, OverflowError):
        return why, None


def _tail(f: File, header_at: int) -> tuple[int, int]:
    """(where the last %%EOF ends, the startxref offset); Bad if the end is not written."""
    end = f.end_without(PDF_WS, PAD_LIMIT)
    if end < 0:
        raise Bad(N_("it ends in a long run of zero bytes (the rest is not written yet)"))
    start = max(header_at, end - PDF_TAIL - JUNK_LIMIT)
    body = f.at(start, end - start)
    eof = body.rfind(b"%%EOF")
    if eof < 0:
        raise Bad(N_("it does not end with %%EOF yet (the end of a PDF)"))
    junk = body[eof + 5 :]
    if junk and (len(junk.strip(PDF_WS)) > JUNK_LIMIT or _NOT_JUNK.search(junk)):
        raise Bad(N_("there is data after its last %%EOF (an update is still being appended)"))
    before = body[max(0, eof - PDF_TAIL) : eof]
    for _ in range(8):  # a few duplicate %%EOF lines some producers add (readers skip them)
        kept = before.rstrip(PDF_WS)
        if not kept.endswith(b"%%EOF"):
            break
        before = kept[:-5]
    m = _STARTXREF.search(before, max(0, before.rfind(b"startxref") - 1))
    if m is None:
        raise Bad(N_("it ends with %%EOF, but no startxref line comes before it"))
    offset = int(m.group(1))
    where = start + max(0, eof - PDF_TAIL) + m.start()
    if offset >= where:
        raise Bad(N_("its startxref {offset} does not point inside the file"), offset=offset)
    if offset <= 0:
        raise Misplaced(N_("its startxref {offset} does not point at a cross-reference section"), offset=offset)
    if b"\x00" in f.at(max(header_at, offset - 16), min(offset, 16) + 4):  # "endobj" and "xref" are text
        shifted = offset + header_at  # junk before %PDF-: the producer counted from the header
        if header_at and shifted < where and b"\x00" not in f.at(max(header_at, shifted - 16), 20):
            return start + eof + 5, shifted  # its other offsets are shifted too: repair takes them
        raise Bad(N_("there are zero bytes where its cross-reference section starts (a part not written yet)"))
    return start + eof + 5, offset


def _check_objects(f: File, entries: Entries, trailer: dict[str, Any]) -> None:
    """Every in-use object (or a sample of many) is where the chain says; so is the catalog."""
    root = trailer.get("/Root")
    if not isinstance(root, Ref):
        raise Bad(N_("its trailer names no document catalog (/Root) yet"))
    encrypted = "/Encrypt" in trailer
    encrypt = trailer.get("/Encrypt")
    if isinstance(encrypt, Ref):  # readers need it first; never in an object stream (§7.5.7)
        entry = entries.get(encrypt.num)
        if entry is None or entry[0] != 1:
            raise Misplaced(N_("its encryption dictionary (object {num}) is not listed"), num=encrypt.num)
        if not isinstance(_value_at(f, entry[1], encrypt.num, encrypt.gen), dict):
            raise Misplaced(N_("its encryption dictionary (object {num}) is not a dictionary"), num=encrypt.num)
    for num, e in entries.compressed():  # a compressed object's object stream must be listed in use
        host = entries.get(e[1])
        if host is None or host[0] != 1:
            raise Misplaced(N_("object stream {host} (holding object {num}) is not listed"), host=e[1], num=num)
    in_use = entries.sample_in_use(MAX_OBJECTS_CHECKED - LAST_OBJECTS_CHECKED, LAST_OBJECTS_CHECKED)
    at = f.at
    for offset, num, gen in in_use:
        if offset == 0:
            continue  # PDF 1.7 §7.5.4: readers treat such an entry as a null object
        if offset >= f.size:
            raise Bad(N_("object {num} lies past the end of the file (not written yet)"), num=num)
        m = OBJ_AT.match(at(offset, 32))
        if m is None or int(m.group(1)) != num or int(m.group(2)) != gen:
            raise Misplaced(N_("object {num} is not at its offset {offset}"), num=num, offset=offset)
    entry = entries.get(root.num)
    if entry is None or entry[0] == 0 or (entry[0] == 1 and entry[2] != root.gen) or (entry[0] == 2 and root.gen):
        raise Misplaced(N_("its document catalog (object {num} {gen}) is not listed"), num=root.num, gen=root.gen)
    if entry[0] == 1:
        if entry[1] == 0:
            raise Misplaced(N_("its document catalog (object {num}) is not at its offset {offset}"), num=root.num, offset=0)
        if not isinstance(_value_at(f, entry[1], root.num, root.gen), dict):
            raise Misplaced(N_("its document catalog (object {num}) is not a dictionary"), num=root.num)
        return
    # In an object stream (§7.5.7): its header lists the catalog at the entry's index.
    host = entries.get(entry[1])
    if host is None or host[0] != 1:
        raise Misplaced(N_("object stream {host} (holding object {num}) is not listed"), host=entry[1], num=root.num)
    m = OBJ_AT.match(at(host[1], 32))
    if m is None or int(m.group(1)) != entry[1]:
        raise Misplaced(N_("object stream {num} is not at its offset {offset}"), num=entry[1], offset=host[1])
    if encrypted:
        return  # its data needs the key; the chain and the headers are whole
    d, data = read_stream(f, host[1], lambda ref: resolve_int(f, ref, entries))
    n, first = d.get("/N"), d.get("/First")
    if d.get("/Type") != "/ObjStm" or type(n) is not int or type(first) is not int or not 0 <= entry[2] < n:
        raise Misplaced(N_("object stream {num} is broken"), num=entry[1])
    data = decode(d, data, 1, host[1])
    numbers = data[:first].split()
    if len(numbers) < 2 * n or numbers[2 * entry[2]] != b"%d" % root.num:
        raise Misplaced(N_("object stream {num} does not hold the document catalog"), num=entry[1])
    try:
        catalog, _ = parse(data, first + int(numbers[2 * entry[2] + 1]), 0)
    except Short:
        catalog = None
    if not isinstance(catalog, dict):
        raise Misplaced(N_("its document catalog (object {num}) is not a dictionary"), num=root.num)


def _value_at(f: File, offset: int, num: int, gen: int) -> Any:
    m = OBJ_AT.match(f.at(offset, 32))
    if m is None or int(m.group(1)) != num or int(m.group(2)) != gen:
        raise Misplaced(N_("object {num} is not at its offset {offset}"), num=num, offset=offset)
    return parse_at(f, offset + m.end())
