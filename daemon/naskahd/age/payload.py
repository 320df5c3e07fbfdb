"""The payload ("Payload": STREAM in 64 KiB chunks): opening, and sealing with a batch
pipeline (one thread encrypts while another hashes and writes)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from naskahd.errors import AgeError
from naskahd.i18n import _
from naskahd.age.primitives import CHUNK, ENC_CHUNK, PAYLOAD_NONCE_SIZE, TAG, _BATCH, _SLOTS, _hkdf
from naskahd.age.reader import _Reader


class _Hash(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...


class _Output(Protocol):
    """Where encrypt_stream writes: a binary file, or anything with its ``write``."""

    def write(self, data: bytes | memoryview, /) -> int | None: ...


def _payload_key(file_key: bytes, nonce: bytes) -> bytes:
    return _hkdf(file_key, nonce, b"payload")


def _chunk_nonce(counter: int, last: bool) -> bytes:
    # 11-byte big-endian counter, then 0x01 for the final chunk.
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _open_payload(src: _Reader, file_key: bytes, write: Callable[[bytes], object]) -> int:
    """Decrypt and release chunk by chunk, each only once authenticated. Returns the size.

    A full-size chunk is tried as a middle chunk, then as the final one (as the reference
    implementation does), so what is released before an error matches other decryptors.
    """
    nonce = src.read(PAYLOAD_NONCE_SIZE)
    if len(nonce) != PAYLOAD_NONCE_SIZE:
        raise AgeError(_(
            "the file is truncated: the payload nonce is missing; use an intact "
            "copy, for example from the backup"
        ))
    aead = ChaCha20Poly1305(_payload_key(file_key, nonce))
    counter = 0
    size = 0
    while True:
        chunk = src.read(ENC_CHUNK)
        if len(chunk) < TAG:
            raise AgeError(_(
                "the file is truncated: the encrypted payload ends early; use an intact "
                "copy, for example from the backup"
            ))
        last = len(chunk) < ENC_CHUNK
        if last and len(chunk) == TAG and counter > 0:
            # "Payload": the final chunk may be empty only if the whole payload is.
            raise AgeError(_(
                "invalid payload: the final chunk is empty; use an intact copy, for "
                "example from the backup"
            ))
        plain = _open_chunk(aead, counter, chunk, last)
        if plain is None and not last:
            last = True
            plain = _open_chunk(aead, counter, chunk, last)
        if plain is None:
            raise AgeError(
                _(
                    "the file is corrupt, truncated or was modified: chunk {n} failed "
                    "authentication; use an intact copy, for example from the backup"
                ).format(n=counter)
            )
        _write_all(write, plain)
        size += len(plain)
        if last:
            if src.read(1):
                raise AgeError(_(
                    "the file is corrupt: there is data after the end of the encrypted "
                    "payload; use an intact copy, for example from the backup"
                ))
            return size
        counter += 1


def _open_chunk(aead: ChaCha20Poly1305, counter: int, chunk: bytes, last: bool) -> bytes | None:
    try:
        return aead.decrypt(_chunk_nonce(counter, last), chunk, None)
    except InvalidTag:
        return None


def _write_all(write: Callable[[bytes], object], data: bytes | memoryview) -> None:
    """Unbuffered files (the durable temp files) may write less than asked: loop."""
    view = memoryview(data)
    while view:
        n = write(view)
        if n is None or n >= len(view):  # None: a sink that does not report counts
            return
        view = view[n:]


def _seal_payload(
    src: BinaryIO,
    dst: _Output,
    key: bytes,
    plain_hash: _Hash | None = None,
    cipher_hash: _Hash | None = None,
) -> tuple[int, int]:
    """Encrypt ``src`` to ``dst`` in 64 KiB STREAM chunks, read and written in batches.

    The hot loop allocates nothing per chunk: buffers are preallocated and reused
    (``readinto``, ``encrypt_into``). A file that fits one batch (most letters) is done
    right here. Larger ones go through a pipeline: one worker thread per remaining stage
    (hashing the plaintext, hashing the ciphertext, writing) runs on the batch just
    encrypted (hashlib and file writes drop the GIL) while this thread reads and encrypts
    the next one, with a helper thread encrypting half of each batch (``encrypt_into``
    drops the GIL too, so the two halves run on two cores). A hash that is not asked for
    (None) is no stage and no thread: without digests the pipeline is this thread, the
    helper and one writer.
    Returns (plaintext size, ciphertext size) of the payload after the nonce.
    """
    aead = ChaCha20Poly1305(key)
    head, eof = _read_head(src, _BATCH * CHUNK)
    if eof:  # buffers sized to the file, no threads: a 20 KB letter costs microseconds
        chunks = max(1, -(-len(head) // CHUNK))
        outview = memoryview(bytearray(len(head) + chunks * TAG))
        consumed, out = _BatchSealer(aead).seal(memoryview(head), outview, len(head), eof)
        if plain_hash is not None:
            plain_hash.update(head)
        if cipher_hash is not None:
            cipher_hash.update(outview)
        _write_all(dst.write, outview)
        return consumed, out
    write = dst.write
    # (function, True if it takes the plaintext, False for the ciphertext), in this order.
    stages: list[tuple[Callable[[memoryview], object], bool]] = []
    if plain_hash is not None:
        stages.append((plain_hash.update, True))
    if cipher_hash is not None:
        stages.append((cipher_hash.update, False))
    stages.append((lambda data: _write_all(write, data), False))
    slots = [_new_slot()]
    inview, outview = slots[0]
    filled = len(head)
    inview[:filled] = head
    del head
    slots += [_new_slot() for _ in range(_SLOTS - 1)]
    helper = _Helper()  # encrypts half of each batch on the second core
    sealer = _BatchSealer(aead, helper)
    try:
        pipeline = _Pipeline([fn for fn, _ in stages])
    except BaseException:
        helper.close()
        raise
    plain_total = cipher_total = 0
    current = 0
    try:
        while True:
            consumed, out = sealer.seal(inview, outview, filled, eof)
            pipeline.submit(current, *(inview[:consumed] if plain else outview[:out] for _, plain in stages))
            plain_total += consumed
            cipher_total += out
            if eof:
                break
            # Carry the held-back chunk to the front of the next slot, once that is free.
            nxt = (current + 1) % _SLOTS
            pipeline.drain(nxt)
            filled -= consumed
            slots[nxt][0][:filled] = inview[consumed : consumed + filled]
            current = nxt
            inview, outview = slots[current]
            filled, eof = _fill(src, inview, filled)
        pipeline.drain_all()
    finally:
        pipeline.close()
        helper.close()
    return plain_total, cipher_total


def _read_head(src: BinaryIO, size: int) -> tuple[bytes, bool]:
    """Up to ``size`` bytes; True if the input ended before (so this is all of it)."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        data = src.read(size - got)
        if not data:
            return b"".join(parts), True
        parts.append(data)
        got += len(data)
    return b"".join(parts), False


def _new_slot() -> tuple[memoryview, memoryview]:
    return memoryview(bytearray(_BATCH * CHUNK)), memoryview(bytearray(_BATCH * ENC_CHUNK))


def _fill(src: BinaryIO, view: memoryview, filled: int) -> tuple[int, bool]:
    """Read until ``view`` is full or the input ends; returns (bytes in view, at EOF)."""
    readinto = src.readinto
    while filled < len(view):
        n = readinto(view[filled:])
        if not n:
            return filled, True
        filled += n
    return filled, False


class _BatchSealer:
    """Encrypts a batch of chunks into an output buffer, numbering chunks across batches.

    With a ``helper`` the batch is split in two: the helper thread encrypts the second
    half while the calling thread encrypts the first (``encrypt_into`` releases the GIL,
    so both run at once on two cores). The chunks are independent but for their number
    and the final-chunk flag, both fixed before the split, so the output is the same.
    """

    def __init__(self, aead: ChaCha20Poly1305, helper: _Helper | None = None) -> None:
        self._aead = aead
        self._counter = 0
        self._helper = helper

    def seal(self, inview: memoryview, outview: memoryview, filled: int, eof: bool) -> tuple[int, int]:
        """Returns (plaintext bytes consumed, ciphertext bytes in ``outview``). Unless at
        EOF, the last full chunk is held back: only EOF tells whether it is the final one."""
        chunks = max(1, -(-filled // CHUNK)) if eof else _BATCH - 1
        consumed = min(filled, chunks * CHUNK)
        first = self._counter
        self._counter += chunks
        final = chunks - 1 if eof else -1  # index of the final chunk, if it is in this batch
        if self._helper is not None and chunks > 1:
            half = (chunks + 1) // 2
            self._helper.start(self._seal_chunks, inview, outview, consumed, first, half, chunks, final)
            try:
                self._seal_chunks(inview, outview, consumed, first, 0, half, final)
            finally:
                self._helper.join()
        else:
            self._seal_chunks(inview, outview, consumed, first, 0, chunks, final)
        return consumed, consumed + chunks * TAG

    def _seal_chunks(
        self, inview: memoryview, outview: memoryview, consumed: int, first: int, lo: int, hi: int, final: int
    ) -> None:
        """Chunks ``lo`` to ``hi - 1`` of the batch; chunk i is number ``first + i``."""
        encrypt_into = self._aead.encrypt_into
        for i in range(lo, hi):
            start = i * CHUNK
            end = min(start + CHUNK, consumed)
            out = i * ENC_CHUNK  # every chunk before the final one is full size
            encrypt_into(_chunk_nonce(first + i, i == final), inview[start:end], None,
                         outview[out : out + end - start + TAG])


class _Helper:
    """A second thread for fork-join work: ``start(fn, *args)`` runs ``fn`` there,
    ``join()`` waits for it to finish and re-raises what it raised."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="age-seal-helper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args = job
            try:
                fn(*args)
            except BaseException as exc:
                self._results.put(exc)
            else:
                self._results.put(None)

    def start(self, fn: Callable[..., object], *args: object) -> None:
        self._jobs.put((fn, args))

    def join(self) -> None:
        error = self._results.get()
        if error is not None:
            raise error

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()


class _Pipeline:
    """One worker thread per function; each runs its jobs in submission order.

    ``drain(slot)`` waits until every job on that slot's buffers is done, so the buffers
    can be reused; a worker's exception is re-raised there.
    """

    def __init__(self, functions: Sequence[Callable[[memoryview], object]]) -> None:
        self._done = [threading.Semaphore(0) for _ in range(_SLOTS)]
        self._pending = [0] * _SLOTS
        self._queues: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in functions]
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._run, args=(fn, q), name="age-seal", daemon=True)
            for fn, q in zip(functions, self._queues, strict=True)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, fn: Callable[[memoryview], object], jobs) -> None:
        while (job := jobs.get()) is not None:
            slot, data = job
            try:
                if self._error is None:
                    fn(data)
            except BaseException as exc:
                self._error = exc
            finally:
                self._done[slot].release()

    def submit(self, slot: int, *data: memoryview) -> None:
        for jobs, item in zip(self._queues, data, strict=True):
            jobs.put((slot, item))
        self._pending[slot] += len(data)

    def drain(self, slot: int) -> None:
        for _n in range(self._pending[slot]):
            self._done[slot].acquire()
        self._pending[slot] = 0
        if self._error is not None:
            raise self._error

    def drain_all(self) -> None:
        for slot in range(_SLOTS):
            self.drain(slot)

    def close(self) -> None:
        for jobs in self._queues:
            jobs.put(None)
        for thread in self._threads:
            thread.join()
