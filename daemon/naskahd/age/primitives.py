"""Constants of the format, base64 and HKDF, bech32, and the stanza (the C2SP age spec's
"Conventions used in this document")."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from naskahd.errors import AgeError
from naskahd.i18n import _


VERSION_LINE = b"age-encryption.org/v1\n"
CHUNK = 64 * 1024  # "Payload": plaintext chunk size
TAG = 16  # Poly1305 tag
ENC_CHUNK = CHUNK + TAG
FILE_KEY_SIZE = 16
PAYLOAD_NONCE_SIZE = 16
COLUMNS = 64  # header stanza bodies and armor wrap at 64 columns
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
SCRYPT_MAX_LOG2N = 22  # age's own limit: above this, refuse instead of working for minutes
SCRYPT_DEFAULT_LOG2N = 18  # what `age -p` uses (about a second)
X25519_LABEL = b"age-encryption.org/v1/X25519"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
_ZERO_NONCE = bytes(12)
_HEADER_LINE_MAX = 8192  # generous: the longest known stanza argument is ~1.5 KB
_HEADER_MAX = 1 << 20
_BATCH = 16  # chunks per read/write: 1 MiB syscalls in the encrypt loop
_SLOTS = 2  # batches in flight: one being encrypted, one being hashed and written
# (3 measured no faster than 2 for `naskahd encrypt`, docs/benchmarks-age.md)
_WHITESPACE = b" \t\r\n"


# --- helpers: base64 and HKDF ("Conventions used in this document") -------------------

_B64_RAW = re.compile(rb"[A-Za-z0-9+/]*")


def _b64encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _b64decode(text: bytes, what: str) -> bytes:
    """Strict unpadded canonical base64: anything else is an error, not a guess."""
    if not _B64_RAW.fullmatch(text) or len(text) % 4 == 1:
        raise AgeError(_("invalid age header: {what} is not valid base64").format(what=what))
    data = base64.b64decode(text + b"=" * (-len(text) % 4))
    if _b64encode(data) != text:
        raise AgeError(_("invalid age header: {what} is not canonical base64").format(what=what))
    return data


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=salt, info=info).derive(ikm)


# --- bech32 (BIP173 without the length limit, "Conventions") ------------------------

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _bech32_polymod(values: Sequence[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _BECH32_GEN[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Sequence[int], frm: int, to: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << to) - 1
    for value in data:
        acc = (acc << frm) | value
        bits += frm
        while bits >= to:
            bits -= to
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to - bits)) & maxv)
    elif bits >= frm or (acc << (to - bits)) & maxv:
        return None  # non-zero or over-long padding: not a canonical encoding
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    five = _convert_bits(data, 8, 5, pad=True) or []
    polymod = _bech32_polymod(_hrp_expand(hrp) + five + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32_CHARSET[d] for d in five + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Return (lower-case hrp, data); ValueError says what is wrong."""
    if text != text.lower() and text != text.upper():
        raise ValueError(_("mixed upper and lower case"))
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise ValueError(_("missing separator or checksum"))
    hrp = text[:pos]
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError(_("invalid character in prefix"))
    values = [_BECH32_CHARSET.find(c) for c in text[pos + 1 :]]
    if -1 in values:
        raise ValueError(_("invalid character"))
    if _bech32_polymod(_hrp_expand(hrp) + values) != 1:
        raise ValueError(_("checksum mismatch (mistyped?)"))
    data = _convert_bits(values[:-6], 5, 8, pad=False)
    if data is None:
        raise ValueError(_("invalid padding"))
    return hrp, bytes(data)


# --- stanzas, recipients and identities ("Native recipient types") --------------------


@dataclass(frozen=True)
class Stanza:
    args: tuple[str, ...]
    body: bytes
