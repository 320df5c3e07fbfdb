"""Reading an age file: buffered input, ASCII armor ("ASCII armor"), and hashing the
ciphertext while it is read."""

from __future__ import annotations

import base64
import binascii
import hashlib
import queue
import threading
from typing import BinaryIO

from naskahd.errors import AgeError
from naskahd.i18n import _
from naskahd.age.primitives import ARMOR_BEGIN, ARMOR_END, COLUMNS, _WHITESPACE


class _Reader:
    """A small buffered reader over anything with ``read(n)``: lines for the header,
    exact-size reads for the payload."""

    def __init__(self, raw: BinaryIO | _ArmorReader | _HashingReader) -> None:
        self._raw = raw
        self._buf = bytearray()
        self._eof = False

    def _fill(self, want: int) -> bool:
        if self._eof:
            return False
        data = self._raw.read(max(want, 8192))
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def peek(self, n: int) -> bytes:
        while len(self._buf) < n and self._fill(n - len(self._buf)):
            pass
        return bytes(self._buf[:n])

    def readline(self, limit: int) -> bytes:
        """Up to and including b"\\n"; at most ``limit`` bytes; shorter only at EOF."""
        start = 0
        while True:
            pos = self._buf.find(b"\n", start, limit)
            if pos >= 0:
                line = bytes(self._buf[: pos + 1])
                del self._buf[: pos + 1]
                return line
            start = len(self._buf)
            if start >= limit or not self._fill(4096):
                line = bytes(self._buf[:limit])
                del self._buf[:limit]
                return line

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes unless the input ends first."""
        if self._buf:
            out = bytes(self._buf[:n])
            del self._buf[:n]
        else:
            out = b""
        while len(out) < n and not self._eof:
            data = self._raw.read(n - len(out))
            if not data:
                self._eof = True
                break
            out += data
        return out

    def skip_whitespace(self) -> None:
        while True:
            while self._buf and self._buf[0] in _WHITESPACE:
                del self._buf[0]
            if self._buf or not self._fill(4096):
                return


class _ArmorReader:
    """Strict PEM per "ASCII armor": 64-column lines, canonical padded base64, no headers,
    LF or CRLF, only whitespace around the block. Decodes line by line."""

    _LINE_MAX = COLUMNS + 3

    def __init__(self, src: _Reader) -> None:
        self._src = src
        self._buf = bytearray()  # decoded, not yet read; appended per line, so not bytes
        self._done = False
        self._lines = 0
        if self._line() != ARMOR_BEGIN:
            raise _armor_error(_("the first line is not {begin}").format(begin=ARMOR_BEGIN.decode()))

    def _line(self) -> bytes | None:
        raw = self._src.readline(self._LINE_MAX)
        if not raw:
            return None
        if raw.endswith(b"\n"):
            raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
        elif len(raw) >= self._LINE_MAX:
            raise _armor_error(_("a line is longer than 64 columns"))
        return raw

    def _next(self) -> None:
        line = self._line()
        if line is None:
            raise _armor_error(_("the END line is missing (truncated file?)"))
        if line == ARMOR_END:
            if self._lines == 0:
                raise _armor_error(_("no data"))
            self._finish()
            return
        if len(line) > COLUMNS:
            raise _armor_error(_("a line is longer than 64 columns"))
        try:
            data = binascii.a2b_base64(line, strict_mode=True)
        except (binascii.Error, ValueError):
            data = None
        short = len(line) < COLUMNS or line.endswith(b"=")
        # A full line without padding is canonical by construction (64 chars = 48 bytes).
        if data is None or not line or (short and binascii.b2a_base64(data, newline=False) != line):
            raise _armor_error(_("invalid or non-canonical base64"))
        self._lines += 1
        self._buf += data
        if short:
            if self._line() != ARMOR_END:  # only the last line may be short
                raise _armor_error(_("a short line is not followed by the END line"))
            self._finish()

    def _finish(self) -> None:
        self._done = True
        while True:
            rest = self._src.read(4096)
            if not rest:
                return
            if rest.strip(_WHITESPACE):
                raise _armor_error(_("data after the END line"))

    def read(self, n: int) -> bytes:
        while len(self._buf) < n and not self._done:
            self._next()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


def _armor_error(reason: str) -> AgeError:
    return AgeError(_("invalid ASCII armor: {reason}").format(reason=reason))


def armor(data: bytes) -> bytes:
    """Encode an age file as ASCII armor (strict PEM, 64 columns)."""
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + COLUMNS] for i in range(0, len(encoded), COLUMNS)]
    return ARMOR_BEGIN + b"\n" + b"".join(line + b"\n" for line in lines) + ARMOR_END + b"\n"


class _HashingReader:
    """Passes reads through and hashes every byte (for verify_sealed)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.hash = _BackgroundHash()
        self.size = 0

    def read(self, n: int) -> bytes:
        data = self._raw.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data


class _BackgroundHash:
    """SHA-256 that moves to a worker thread once the input gets large (verify_sealed).

    The first MiB is hashed inline: a thread costs more than that. After it, data goes
    over in 256 KiB batches through a one-slot queue, so hashing (hashlib drops the GIL)
    overlaps with reading and decrypting while at most about 768 KiB is held. ``update``
    keeps references: pass only data that is not modified afterwards (bytes).
    """

    _INLINE = 1 << 20
    _BATCH_BYTES = 256 << 10

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._seen = 0
        self._batch: list[bytes | memoryview] = []
        self._batched = 0
        self._queue: queue.Queue[list[bytes | memoryview] | None] | None = None
        self._thread: threading.Thread | None = None

    def update(self, data: bytes | memoryview) -> None:
        self._seen += len(data)
        if self._seen <= self._INLINE:
            self._hash.update(data)
            return
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= self._BATCH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._queue is None:
            self._queue = queue.Queue(maxsize=1)
            self._thread = threading.Thread(target=self._run, name="age-verify-hash", daemon=True)
            self._thread.start()
        self._queue.put(self._batch)
        self._batch, self._batched = [], 0

    def _run(self) -> None:
        assert self._queue is not None
        while (batch := self._queue.get()) is not None:
            for data in batch:
                self._hash.update(data)

    def close(self) -> None:
        """Finish: hash what is pending and stop the thread. Safe to call twice."""
        if self._batch:
            if self._queue is None:
                for data in self._batch:
                    self._hash.update(data)
                self._batch, self._batched = [], 0
            else:
                self._flush()
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()


def _open_input(src: BinaryIO | _HashingReader) -> _Reader:
    """Binary or armored: armor is recognised after optional leading whitespace."""
    reader = _Reader(src)
    if reader.peek(1)[:1] in (b" ", b"\t", b"\r", b"\n"):
        reader.skip_whitespace()
        if not reader.peek(10).startswith(ARMOR_BEGIN[:10]):
            raise AgeError(_(
                "not an age file (it does not start with the age header): check that "
                "this is the right file"
            ))
    if reader.peek(10) == ARMOR_BEGIN[:10]:
        return _Reader(_ArmorReader(reader))
    return reader
