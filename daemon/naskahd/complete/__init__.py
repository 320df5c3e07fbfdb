"""Is a settled scan complete? Content checks for PDF, JPEG, PNG and TIFF (issues 8, 16).

Quiet time alone is no proof: a network scanner writing a multi-page PDF over SMB pauses
between pages. After the settle window the daemon asks ``check(path)``; a file of a known
format is taken only when its own structure says the writer reached the end. The rule
(issue 16): take every whole scan that a PDF or image reader opens, and never a cut one.
Readers are lenient in known places (pypdf non-strict, qpdf, libjpeg, libpng, libtiff);
so is this check, exactly where truncation cannot be the cause.

One module per job: ``sniff`` (the type, by the first bytes only, never by the name),
``pdf`` (tail and orchestration), ``pdf_xref`` (the cross-reference chain), ``pdf_objects``
(a small object parser and stream decoding), ``pdf_repair`` (a damaged PDF, opened by
searching it), ``jpeg``, ``png``, ``tiff``; ``base`` holds the reasons and file access.
Each module's docstring says what counts as the end for its format.

A verdict's reason is a translatable template with its parameters (``base.Reason``),
rendered in the reader's language when shown (``Completeness.reason``). A damaged PDF that
readers open by repair is complete, with ``note`` saying so (``detected_type``
"pdf-repaired" is what the register can store).

Files of no known type are complete: the office keeps everything; they are filed after the
settle window. A file whose first bytes are still NUL (pre-allocated, nothing written yet),
or only the start of a signature, is never complete.

Known limit: a writer that leaves a structurally complete file between pages (a TIFF whose
next page's IFD is not linked yet, a TIFF pre-allocated and written in place, or a PDF
rewritten as incremental updates page by page) is indistinguishable from a finished one by
content; the settle window and the open-for-write probe (``naskahd.samba``) carry that case.
So does a hole of zeros inside a PDF's stream data, or (when no repair is needed) inside an
object's body: the strict reading looks at headers, tables, trailers and the catalog only.
The daemon never imports pypdf (memory and time); the tests use it, and qpdf, as oracles.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass, field

from naskahd.i18n import N_

from . import jpeg, pdf, png, tiff
from .base import HEAD, PDF_WS, File, Reason
from .sniff import JPEG, PARTIAL, PDF, PNG, TIFF, ZEROS, detect_kind, sniff

__all__ = ["JPEG", "PDF", "PDF_WS", "PNG", "TIFF", "Completeness", "Reason", "check", "check_fd", "detect_kind"]

REPAIRED = "pdf-repaired"  # detected_type of a damaged PDF taken by repair (fits the register's 16 characters)


@dataclass(frozen=True)
class Completeness:
    kind: str | None  # "pdf" | "jpeg" | "png" | "tiff" | None (no known magic bytes)
    complete: bool  # None-kind files are complete, unless nothing is written yet
    why: Reason  # why complete or not, for a person (rendered by ``reason``)
    note: Reason | None = field(default=None)  # a complete but damaged file: what was repaired

    @property
    def reason(self) -> str:
        """The reason in the language chosen now (naskahd.i18n)."""
        return self.why.render()

    @property
    def repaired(self) -> bool:
        return self.note is not None

    @property
    def detected_type(self) -> str | None:
        """What the register's detected_type can say: the kind, or "pdf-repaired"."""
        return REPAIRED if self.repaired and self.kind == PDF else self.kind


_COMPLETE = {
    PDF: N_("PDF ends with %%EOF, its cross-reference chain loads and lists objects that are there"),
    JPEG: N_("JPEG ends with its EOI marker"),
    PNG: N_("PNG ends with its IEND chunk"),
    TIFF: N_("TIFF image directories and image data lie inside the file"),
}
_INCOMPLETE = {  # what the format-specific reason is prefixed with
    PDF: N_("PDF not complete: {why}"),
}


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
    head = os.pread(fd, min(size, HEAD), 0)
    found = sniff(head, size)
    if found.state == ZEROS:
        return Completeness(None, False, Reason.of(N_("the file holds only zero bytes so far (nothing written yet)")))
    if found.state == PARTIAL:
        return Completeness(found.kind, False, Reason.of(N_("only the first bytes of the file are written so far")))
    if found.kind is None:
        return Completeness(None, True, Reason.of(N_("no PDF, JPEG, PNG or TIFF signature: taken after the settle window")))
    f = File(fd, size, head)
    note = None
    try:
        if found.kind == PDF:
            why, note = pdf.check(f, found.offset)
        else:
            why = _CHECKS[found.kind](f)
    except struct.error:  # a read came back short: the file shrank while being checked
        why = Reason.of(N_("the file changed while it was being checked"))
    if why is None:  # a damaged file taken by repair: its note is the reason too
        return Completeness(found.kind, True, note or Reason.of(_COMPLETE[found.kind]), note)
    if found.kind in _INCOMPLETE:
        why = Reason.of(_INCOMPLETE[found.kind], why=why)
    return Completeness(found.kind, False, why)


_CHECKS = {JPEG: jpeg.check, PNG: png.check, TIFF: tiff.check}
