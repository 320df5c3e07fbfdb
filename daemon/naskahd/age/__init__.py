"""The age v1 file format (https://c2sp.org/age), and nothing else.

X25519 recipients, scrypt passphrase stanzas, STREAM payload in 64 KiB chunks, ASCII
armor on input. Built on ``cryptography`` primitives plus hashlib; memory use does not
grow with the file size. Section names in comments refer to the C2SP age spec.

Every failure raises :class:`naskahd.errors.AgeError` with a message for a person; a
caller's mistake (verify_sealed on a Sealed made without digests) raises ValueError.

One module per part of the spec: ``primitives`` (constants, base64, HKDF, bech32, the
stanza), ``keys`` (X25519 and scrypt recipients and identities), ``identityfile``,
``reader`` (buffered input, armor), ``header`` (parsing, MAC, unwrapping the file key),
``payload`` (STREAM: opening, and the sealing pipeline) and ``api`` (the functions below).
"""

from naskahd.age.api import Sealed, decrypt_bytes, decrypt_stream, encrypt_bytes, encrypt_stream, verify_sealed
from naskahd.age.identityfile import parse_identity_file
from naskahd.age.keys import (
    Identity,
    Recipient,
    ScryptIdentity,
    ScryptRecipient,
    X25519Identity,
    X25519Recipient,
    generate_identity,
    parse_recipient,
)
from naskahd.age.primitives import bech32_decode, bech32_encode
from naskahd.age.reader import armor
from naskahd.errors import AgeError

__all__ = [
    "AgeError",
    "Identity",
    "Recipient",
    "ScryptIdentity",
    "ScryptRecipient",
    "Sealed",
    "X25519Identity",
    "X25519Recipient",
    "armor",
    "bech32_decode",
    "bech32_encode",
    "decrypt_bytes",
    "decrypt_stream",
    "encrypt_bytes",
    "encrypt_stream",
    "generate_identity",
    "parse_identity_file",
    "parse_recipient",
    "verify_sealed",
]
