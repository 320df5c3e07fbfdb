"""Which format is it? By the first bytes only, never by the name.

* JPEG, PNG, TIFF/BigTIFF: their signature at offset 0.
* PDF: ``%PDF-`` within the first 1,024 bytes, as readers look for it (a byte-order mark or
  a few bytes of junk before it still make a PDF, and it is checked as one).
* A file whose first bytes are not written yet is not "of no known type": a file shorter
  than a signature and equal to its start (``%PD``), or such a start followed only by NUL
  bytes (pre-allocated to its final size), is of that type and incomplete; so is a ``%P``..
  ``%PDF`` at the very end of a short file's first bytes (a lone ``%`` only at a line's
  start or after a byte-order mark), or a byte-order mark alone. A file whose first 64 KiB (or
  all of it, if shorter) are NUL bytes is never complete, whatever it will become.
"""

from __future__ import annotations

from dataclasses import dataclass

PDF, JPEG, PNG, TIFF = "pdf", "jpeg", "png", "tiff"
PDF_MAGIC = b"%PDF-"
PDF_HEADER_WITHIN = 1024  # PDF 1.7 Annex H.3 note 3: readers accept %PDF- within the first 1024 bytes
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark, which some tools put before %PDF-

SIGNATURES = (
    (PDF_MAGIC, PDF),
    (b"\xff\xd8\xff", JPEG),  # SOI, then the next marker's FF (T.81 B.1.1.2)
    (PNG_SIGNATURE, PNG),  # PNG §5.2
    (b"II*\x00", TIFF), (b"MM\x00*", TIFF),  # TIFF 6.0 §2 image file header
    (b"II+\x00", TIFF), (b"MM\x00+", TIFF),  # BigTIFF
)

WHOLE, PARTIAL, ZEROS = "whole", "partial", "zeros"


@dataclass(frozen=True)
class Sniff:
    kind: str | None
    state: str  # WHOLE: a whole signature; PARTIAL: only its start is written; ZEROS: no data yet
    offset: int = 0  # where the signature starts (PDF: %PDF- after leading junk)


def sniff(head: bytes, size: int) -> Sniff:
    """``head``: the first bytes of a file of ``size`` bytes (up to 64 KiB of them)."""
    for signature, kind in SIGNATURES:
        if head.startswith(signature):
            return Sniff(kind, WHOLE)
    at = head.find(PDF_MAGIC, 0, PDF_HEADER_WITHIN + len(PDF_MAGIC))
    if at > 0:
        return Sniff(PDF, WHOLE, at)
    written = head.rstrip(b"\x00")
    if not written:
        return Sniff(None, ZEROS)
    if len(head) == size or len(head) > len(written):  # only NUL bytes (if any) follow ``written``
        for signature, kind in SIGNATURES:
            if len(written) < len(signature) and signature.startswith(written):
                return Sniff(kind, PARTIAL)
        if BOM.startswith(written):
            return Sniff(None, PARTIAL)  # a byte-order mark and nothing else yet
        if len(written) <= PDF_HEADER_WITHIN + len(PDF_MAGIC):
            for n in range(len(PDF_MAGIC) - 1, 0, -1):
                before = written[: len(written) - n]
                if written.endswith(PDF_MAGIC[:n]) and (n > 1 or before in (b"", BOM) or before.endswith((b"\r", b"\n"))):
                    return Sniff(PDF, PARTIAL, len(written) - n)
    return Sniff(None, WHOLE)


def detect_kind(head: bytes) -> str | None:
    """The format by the first bytes (``head`` taken as the whole file when short)."""
    return sniff(head, len(head)).kind
