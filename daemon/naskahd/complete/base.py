"""What every format check shares: the reason a verdict gives (a translatable template with
its parameters, rendered when shown) and bounded pread access to the first ``size`` bytes."""

from __future__ import annotations

import os
from dataclasses import dataclass

from naskahd.i18n import translate_if_known

HEAD = 64 * 1024  # one read covers the header structures of almost every scan
CHUNK = 1024 * 1024  # searches through a file read it in pieces this big: bounded memory
PDF_WS = b"\x00\t\n\x0c\r "  # PDF 1.7 §7.2.2 Table 1: white-space characters


@dataclass(frozen=True)
class Reason:
    """A message for a person: an English ``str.format`` template marked with ``N_`` and its
    parameters. ``str(reason)`` renders it in the language chosen at that moment."""

    template: str
    params: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, template: str, **params: object) -> Reason:
        return cls(template, tuple(sorted(params.items())))

    def render(self) -> str:
        return translate_if_known(self.template).format(**dict(self.params))

    def english(self) -> str:
        return self.template.format(**dict(self.params))

    __str__ = render


class Bad(Exception):
    """The structure is not (yet) whole; ``reason`` says why."""

    def __init__(self, template: str, **params: object) -> None:
        super().__init__(template)
        self.reason = Reason.of(template, **params)


class File:
    """pread access to the first ``size`` bytes, with the head cached (one syscall for most checks)."""

    def __init__(self, fd: int, size: int, head: bytes | None = None) -> None:
        self.fd, self.size = fd, size
        self.head = head if head is not None else os.pread(fd, min(size, HEAD), 0)

    def at(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset``; shorter at the end (or if the file shrank meanwhile)."""
        n = max(0, min(n, self.size - offset))
        if offset < 0 or n == 0:
            return b""
        if offset + n <= len(self.head):
            return self.head[offset : offset + n]
        return os.pread(self.fd, n, offset)

    def tail(self, n: int) -> tuple[int, bytes]:
        start = max(0, self.size - n)
        return start, self.at(start, self.size - start)

    def find(self, needle: bytes, start: int, end: int | None = None) -> int:
        """The first offset of ``needle`` in [start, end), read a piece at a time; -1 if none."""
        end = self.size if end is None else min(end, self.size)
        overlap = len(needle) - 1
        pos = max(0, start)
        while pos < end:
            piece = self.at(pos, min(CHUNK, end - pos))
            if not piece:
                return -1
            i = piece.find(needle)
            if i >= 0 and pos + i + len(needle) <= end:
                return pos + i
            if pos + len(piece) >= end:
                return -1
            pos += len(piece) - overlap
        return -1

    def end_without(self, chars: bytes, limit: int) -> int:
        """Where the file ends once trailing bytes of ``chars`` are stripped, looking back at
        most ``limit`` bytes; -1 if the run is longer than that (or is the whole file)."""
        end, step = self.size, 4096  # small first: most files end right at their marker
        while end > 0 and self.size - end < limit:
            n = min(step, end, limit - (self.size - end))
            piece = self.at(end - n, n)
            kept = piece.rstrip(chars)
            if kept:
                return end - n + len(kept)
            end -= n
            step = min(step * 8, 256 * 1024)
        return -1

    def zeros_after(self, end: int, limit: int) -> bool:
        """Only NUL padding (at most ``limit`` bytes) between ``end`` and the end of the file."""
        return end >= self.size or self.end_without(b"\x00", limit) == end
