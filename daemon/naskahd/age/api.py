"""The public API: encrypt and decrypt streams and bytes, and verify a sealed file."""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from naskahd.errors import AgeError
from naskahd.i18n import _
from naskahd.age.primitives import FILE_KEY_SIZE, PAYLOAD_NONCE_SIZE
from naskahd.age.keys import Identity, Recipient, ScryptRecipient
from naskahd.age.reader import _BackgroundHash, _HashingReader, _Reader, _open_input
from naskahd.age.header import _check_mac, _header_bytes, _read_header, _unwrap
from naskahd.age.payload import _Output, _open_payload, _payload_key, _seal_payload, _write_all


@dataclass(frozen=True)
class Sealed:
    """What encrypt_stream wrote, enough for verify_sealed to check it without an identity.

    ``plaintext_sha256`` and ``ciphertext_sha256`` are hex SHA-256 digests, or None when
    encrypt_stream was called with ``digests=False``; verify_sealed refuses such a Sealed.
    """

    plaintext_sha256: str | None
    ciphertext_sha256: str | None
    plaintext_size: int
    ciphertext_size: int
    recipients: tuple[str, ...]
    file_key: bytes = field(repr=False)


def encrypt_stream(
    src: BinaryIO, dst: BinaryIO | _Output, recipients: Sequence[Recipient], *, digests: bool = True
) -> Sealed:
    """Encrypt ``src`` to ``dst`` as a binary age file. Reads and writes stream-wise.

    With ``digests`` (the default, what the daemon stores and verify_sealed checks) the
    SHA-256 of the plaintext and of the whole written file are computed on the way, two
    extra passes over the data. ``digests=False`` does no hashing at all (no hash objects,
    no hashing threads) and returns a Sealed whose two digests are None: for callers that
    only want the file, such as ``naskahd encrypt``.
    """
    recipients = list(recipients)
    if not recipients:
        raise AgeError(_("no recipient given: encrypting to nobody would lose the data"))
    if len(recipients) > 1 and any(isinstance(r, ScryptRecipient) for r in recipients):
        raise AgeError(_("a passphrase cannot be combined with other recipients"))
    file_key = secrets.token_bytes(FILE_KEY_SIZE)
    header = _header_bytes(file_key, [r.wrap(file_key) for r in recipients])
    nonce = secrets.token_bytes(PAYLOAD_NONCE_SIZE)
    plain_hash = hashlib.sha256() if digests else None
    cipher_hash = hashlib.sha256(header + nonce) if digests else None
    _write_all(dst.write, header + nonce)
    plain_size, cipher_size = _seal_payload(src, dst, _payload_key(file_key, nonce), plain_hash, cipher_hash)
    return Sealed(
        plaintext_sha256=plain_hash.hexdigest() if plain_hash is not None else None,
        ciphertext_sha256=cipher_hash.hexdigest() if cipher_hash is not None else None,
        plaintext_size=plain_size,
        ciphertext_size=len(header) + len(nonce) + cipher_size,
        recipients=tuple(str(r) for r in recipients),
        file_key=file_key,
    )


def decrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    identities: Sequence[Identity],
    passphrase: Callable[[], bytes] | None = None,
) -> None:
    """Decrypt an age file (binary or armored) to ``dst``.

    Plaintext is written chunk by chunk as each chunk is authenticated, so on an error
    ``dst`` may hold a verified prefix: callers writing files must discard them on error.
    ``passphrase`` is called only if the file has an scrypt stanza no identity opened.
    """
    reader = _open_input(src)
    header = _read_header(reader)
    file_key = _unwrap(header, identities, passphrase)
    _check_mac(header, file_key)
    _open_payload(reader, file_key, dst.write)


def verify_sealed(src: BinaryIO, sealed: Sealed) -> None:
    """Read a written age file back and check it against ``sealed``; writes nothing.

    ``sealed`` must carry both digests: one from ``encrypt_stream(..., digests=False)``
    cannot be verified, and is refused with ValueError (a caller's mistake, not a bad file).
    """
    if sealed.plaintext_sha256 is None or sealed.ciphertext_sha256 is None:
        raise ValueError(
            "verify_sealed needs the SHA-256 digests, and this Sealed has none: "
            "it comes from encrypt_stream(..., digests=False); encrypt with digests=True to verify"
        )
    hashing = _HashingReader(src)
    plain_hash = _BackgroundHash()
    try:
        reader = _Reader(hashing)
        header = _read_header(reader)
        if len(header.stanzas) != len(sealed.recipients):
            raise AgeError(_("verification failed: the file does not have the expected recipients"))
        _check_mac(header, sealed.file_key)
        size = _open_payload(reader, sealed.file_key, plain_hash.update)
        while hashing.read(1 << 16):  # the payload reader stops at the final chunk
            pass
        plain_digest = plain_hash.hexdigest()
        cipher_digest = hashing.hash.hexdigest()
    finally:
        plain_hash.close()
        hashing.hash.close()
    if (
        size != sealed.plaintext_size
        or plain_digest != sealed.plaintext_sha256
        or hashing.size != sealed.ciphertext_size
        or cipher_digest != sealed.ciphertext_sha256
    ):
        raise AgeError(_("verification failed: the written file does not match what was encrypted"))


def encrypt_bytes(data: bytes, recipients: Sequence[Recipient]) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, recipients)
    return out.getvalue()


def decrypt_bytes(data: bytes, identities: Sequence[Identity]) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(data), out, identities)
    return out.getvalue()
