"""The age v1 file format (https://c2sp.org/age), and nothing else.

X25519 recipients, scrypt passphrase stanzas, STREAM payload in 64 KiB chunks, ASCII
armor on input. Built on ``cryptography`` primitives plus hashlib; memory use does not
grow with the file size. Section names in comments refer to the C2SP age spec.

Every failure raises :class:`naskahd.errors.AgeError` with a message for a person; a
caller's mistake (verify_sealed on a Sealed made without digests) raises ValueError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import queue
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from naskahd.errors import AgeError
from naskahd.i18n import _

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
    "decrypt_bytes",
    "decrypt_stream",
    "encrypt_bytes",
    "encrypt_stream",
    "generate_identity",
    "parse_identity_file",
    "parse_recipient",
    "verify_sealed",
]

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


class Recipient(Protocol):
    def wrap(self, file_key: bytes) -> Stanza: ...


class X25519Recipient:
    """An ``age1...`` public key."""

    def __init__(self, public: bytes) -> None:
        if len(public) != 32:
            raise AgeError(_("an X25519 recipient must be 32 bytes"))
        self.public = public

    def __str__(self) -> str:
        return bech32_encode("age", self.public)

    def __repr__(self) -> str:
        return f"X25519Recipient({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Recipient) and other.public == self.public

    def __hash__(self) -> int:
        return hash(self.public)

    def wrap(self, file_key: bytes) -> Stanza:
        # "X25519 recipient stanza": a fresh ephemeral key for every stanza and file.
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(self.public))
        key = _hkdf(shared, share + self.public, X25519_LABEL)
        body = ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)
        return Stanza(("X25519", _b64encode(share).decode()), body)


class X25519Identity:
    """An ``AGE-SECRET-KEY-1...`` secret key. ``str()`` gives its encoding: keep it secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise AgeError(_("an X25519 identity must be 32 bytes"))
        self._secret = secret
        self._key = X25519PrivateKey.from_private_bytes(secret)
        self._public = self._key.public_key().public_bytes_raw()

    def __str__(self) -> str:
        return bech32_encode("age-secret-key-", self._secret).upper()

    def __repr__(self) -> str:
        return f"X25519Identity(recipient={str(self.recipient())!r})"

    def recipient(self) -> X25519Recipient:
        return X25519Recipient(self._public)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.args[0] != "X25519":  # other types are not ours: ignore them
                continue
            if len(stanza.args) != 2:
                raise AgeError(_("invalid age header: an X25519 stanza must have two arguments"))
            share = _b64decode(stanza.args[1].encode(), _("the X25519 share"))
            if len(share) != 32:
                raise AgeError(_("invalid age header: the X25519 share is not 32 bytes"))
            if len(stanza.body) != FILE_KEY_SIZE + TAG:
                raise AgeError(_("invalid age header: the X25519 stanza body is not 32 bytes"))
            try:
                shared = self._key.exchange(X25519PublicKey.from_public_bytes(share))
            except ValueError:  # low-order point: the shared secret would be all zeroes
                raise AgeError(_("invalid age header: the X25519 share is a low-order point")) from None
            if shared == bytes(32):
                raise AgeError(_("invalid age header: the X25519 share is a low-order point"))
            key = _hkdf(shared, share + self._public, X25519_LABEL)
            try:
                return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, stanza.body, None)
            except InvalidTag:
                continue  # addressed to someone else
        return None


class ScryptRecipient:
    """Passphrase encryption; its stanza must be the only one in the header."""

    def __init__(self, passphrase: bytes, log2n: int = SCRYPT_DEFAULT_LOG2N) -> None:
        if not passphrase:
            raise AgeError(_("the passphrase is empty"))
        self._passphrase = passphrase
        self.log2n = log2n

    def __str__(self) -> str:
        return "scrypt"

    def wrap(self, file_key: bytes) -> Stanza:
        salt = secrets.token_bytes(16)
        key = _scrypt(self._passphrase, salt, self.log2n)
        body = ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)
        return Stanza(("scrypt", _b64encode(salt).decode(), str(self.log2n)), body)


class ScryptIdentity:
    """A passphrase to try on an scrypt stanza (``age -p`` files, protected identity files)."""

    def __init__(self, passphrase: bytes, max_log2n: int = SCRYPT_MAX_LOG2N) -> None:
        self._passphrase = passphrase
        self.max_log2n = max_log2n

    def __repr__(self) -> str:
        return "ScryptIdentity(...)"

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.args[0] != "scrypt":
                continue
            salt, log2n = _check_scrypt_stanza(stanza, self.max_log2n)
            key = _scrypt(self._passphrase, salt, log2n)
            try:
                return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, stanza.body, None)
            except InvalidTag:
                continue
        return None


Identity = Union[X25519Identity, ScryptIdentity]

_WORK_FACTOR = re.compile(r"[1-9][0-9]*")


def _check_scrypt_stanza(stanza: Stanza, max_log2n: int = SCRYPT_MAX_LOG2N) -> tuple[bytes, int]:
    """Validate an scrypt stanza ("scrypt recipient stanza") before any expensive work."""
    if len(stanza.args) != 3:
        raise AgeError(_("invalid age header: an scrypt stanza must have three arguments"))
    salt = _b64decode(stanza.args[1].encode(), _("the scrypt salt"))
    if len(salt) != 16:
        raise AgeError(_("invalid age header: the scrypt salt is not 16 bytes"))
    text = stanza.args[2]
    if not _WORK_FACTOR.fullmatch(text):
        raise AgeError(_("invalid age header: invalid scrypt work factor {value!r}").format(value=text))
    if len(text) > 2 or int(text) > max_log2n:
        raise AgeError(
            _(
                "the scrypt work factor 2^{value} is above the limit 2^{limit}: decrypting would take "
                "too long; if you trust the file, re-encrypt it with a lower work factor"
            ).format(value=text, limit=max_log2n)
        )
    if len(stanza.body) != FILE_KEY_SIZE + TAG:
        raise AgeError(_("invalid age header: the scrypt stanza body is not 32 bytes"))
    return salt, int(text)


def _scrypt(passphrase: bytes, salt: bytes, log2n: int) -> bytes:
    # Memory is 128 * r * N bytes: 256 MiB at 2^18, 4 GiB at the 2^22 limit.
    kdf = Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=1 << log2n, r=8, p=1)
    try:
        return kdf.derive(passphrase)
    except MemoryError:
        raise AgeError(
            _("not enough memory for the scrypt work factor 2^{value} ({mib} MiB needed)").format(
                value=log2n, mib=(128 * 8 << log2n) >> 20)
        ) from None


def parse_recipient(text: str) -> X25519Recipient:
    """Parse an ``age1...`` recipient."""
    value = text.strip()
    try:
        hrp, data = bech32_decode(value)
    except ValueError as exc:
        raise AgeError(
            _("invalid recipient {value!r}: {reason}").format(value=value, reason=str(exc))
        ) from None
    if hrp != "age" or len(data) != 32:
        raise AgeError(
            _("invalid recipient {value!r}: not an age X25519 public key (age1...)").format(value=value)
        )
    return X25519Recipient(data)


def _parse_identity(text: str, where: str) -> X25519Identity:
    # Never echo the value: it is a secret key.
    try:
        hrp, data = bech32_decode(text)
    except ValueError as exc:
        raise AgeError(_("invalid identity {where}: {reason}").format(where=where, reason=str(exc))) from None
    if hrp != "age-secret-key-" or len(data) != 32:
        raise AgeError(
            _("unsupported identity {where}: only X25519 keys (AGE-SECRET-KEY-1...) are supported").format(
                where=where
            )
        )
    return X25519Identity(data)


def generate_identity() -> X25519Identity:
    return X25519Identity(secrets.token_bytes(32))


def _looks_encrypted(data: bytes) -> bool:
    start = data.lstrip(_WHITESPACE)
    return start.startswith(b"age-encryption.org/") or start.startswith(ARMOR_BEGIN[:10])


def parse_identity_file(data: bytes, passphrase: Callable[[], bytes] | None = None) -> list[Identity]:
    """Parse an identity file: plain ``AGE-SECRET-KEY-1`` lines, or an age file (scrypt)
    whose plaintext is such a file. ``passphrase`` is called only for the latter."""
    if _looks_encrypted(data):
        if passphrase is None:
            raise AgeError(_("the identity file is passphrase-protected, and no passphrase was given"))
        try:
            if _stanza_types(data) != ["scrypt"]:
                raise AgeError(_("it is encrypted, but not with a passphrase"))
            out = io.BytesIO()
            decrypt_stream(io.BytesIO(data), out, [], passphrase)  # checks the stanza, then asks
            data = out.getvalue()
        except AgeError as exc:
            raise AgeError(
                _("cannot open the protected identity file: {reason}").format(reason=str(exc))
            ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AgeError(_("the identity file is not text: is it really an age identity file?")) from None
    identities: list[Identity] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        identities.append(_parse_identity(line, _("on line {n}").format(n=number)))
    if not identities:
        raise AgeError(_("the identity file holds no identity (AGE-SECRET-KEY-1...)"))
    return identities


def _stanza_types(data: bytes) -> list[str]:
    header = _read_header(_open_input(io.BytesIO(data)))
    return [s.args[0] for s in header.stanzas]


# --- reading: buffered input, armor ("ASCII armor") ----------------------------------


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


# --- header ("Header", ABNF) -----------------------------------------------------------


@dataclass
class _Header:
    stanzas: list[Stanza]
    mac_input: bytes  # the header up to and including "---"
    mac: bytes


_ARG = re.compile(rb"[\x21-\x7e]+")


def _read_header(src: _Reader) -> _Header:
    first = src.readline(len(VERSION_LINE))
    if first != VERSION_LINE:
        if first.startswith(b"age-encryption.org/"):
            raise AgeError(_("unsupported age version (only age-encryption.org/v1 is supported)"))
        raise AgeError(_(
            "not an age file (it does not start with the age header): check that "
            "this is the right file"
        ))
    raw = bytearray(first)
    stanzas: list[Stanza] = []
    line = _header_line(src, raw)
    while line.startswith(b"-> "):
        args = line[3:-1].split(b" ")
        if not all(_ARG.fullmatch(a) for a in args):
            raise AgeError(_("invalid age header: malformed stanza arguments"))
        body, line = _read_body(src, raw)
        stanzas.append(Stanza(tuple(a.decode("ascii") for a in args), body))
    if not stanzas:
        raise AgeError(_("invalid age header: no recipient stanza"))
    if not line.startswith(b"--- "):
        raise AgeError(_("invalid age header: unexpected line (the header MAC is missing or malformed)"))
    mac_text = line[4:-1]
    if len(mac_text) != 43 or not line.endswith(b"\n"):
        raise AgeError(_("invalid age header: malformed header MAC"))
    mac = _b64decode(mac_text, _("the header MAC"))
    mac_input = bytes(raw[: len(raw) - len(line) + 3])
    _check_stanza_mix(stanzas)
    return _Header(stanzas, mac_input, mac)


def _header_line(src: _Reader, raw: bytearray) -> bytes:
    line = src.readline(_HEADER_LINE_MAX)
    if not line.endswith(b"\n"):
        if len(line) >= _HEADER_LINE_MAX:
            raise AgeError(_("invalid age header: line too long"))
        raise AgeError(_("invalid age header: the file ends inside the header (truncated?)"))
    raw += line
    if len(raw) > _HEADER_MAX:
        raise AgeError(_("invalid age header: header too large"))
    return line


def _read_body(src: _Reader, raw: bytearray) -> tuple[bytes, bytes]:
    """Body lines of one stanza; it ends at the first line shorter than 64 columns.
    Returns (body, next line)."""
    parts: list[bytes] = []
    while True:
        line = _header_line(src, raw)
        text = line[:-1]
        if len(text) > COLUMNS or not _B64_RAW.fullmatch(text):
            raise AgeError(_("invalid age header: malformed stanza body"))
        parts.append(text)
        if len(text) < COLUMNS:
            break
    body = _b64decode(b"".join(parts), _("a stanza body"))
    return body, _header_line(src, raw)


def _check_stanza_mix(stanzas: Sequence[Stanza]) -> None:
    # "scrypt recipient stanza": an scrypt stanza must be alone, for any identity.
    if len(stanzas) > 1 and any(s.args[0] == "scrypt" for s in stanzas):
        raise AgeError(_("invalid age header: an scrypt stanza must be the only stanza"))


def _header_bytes(file_key: bytes, stanzas: Sequence[Stanza]) -> bytes:
    out = bytearray(VERSION_LINE)
    for stanza in stanzas:
        out += b"-> " + " ".join(stanza.args).encode("ascii") + b"\n"
        body = _b64encode(stanza.body)
        for i in range(0, len(body), COLUMNS):
            out += body[i : i + COLUMNS] + b"\n"
        if len(body) % COLUMNS == 0:  # the body must end with a short (maybe empty) line
            out += b"\n"
    out += b"---"
    out += b" " + _b64encode(_header_mac(file_key, bytes(out))) + b"\n"
    return bytes(out)


def _header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    return hmac.digest(_hkdf(file_key, b"", b"header"), mac_input, "sha256")


def _check_mac(header: _Header, file_key: bytes) -> None:
    if not hmac.compare_digest(_header_mac(file_key, header.mac_input), header.mac):
        raise AgeError(_(
            "the header MAC does not match: the file was modified or is corrupt; "
            "use an intact copy, for example from the backup"
        ))


def _unwrap(
    header: _Header, identities: Sequence[Identity], passphrase: Callable[[], bytes] | None
) -> bytes:
    stanzas = header.stanzas
    file_key = None
    for identity in identities:
        file_key = identity.unwrap(stanzas)
        if file_key is not None:
            break
    is_scrypt = stanzas[0].args[0] == "scrypt"
    if file_key is None and is_scrypt:
        if passphrase is None and not any(isinstance(i, ScryptIdentity) for i in identities):
            raise AgeError(_("the file is encrypted with a passphrase, and no passphrase was given"))
        if passphrase is not None:
            _check_scrypt_stanza(stanzas[0])  # before asking: a bad file should not prompt
            file_key = ScryptIdentity(passphrase()).unwrap(stanzas)
        if file_key is None:
            raise AgeError(_(
                "wrong passphrase (or the file was not encrypted with it): check the "
                "passphrase and try again"
            ))
    if file_key is None and not identities:
        raise AgeError(_(
            "no identity given: the file is encrypted to a public key; give its "
            "identity (secret key) file"
        ))
    if file_key is None:
        raise AgeError(
            _("no identity matches: the file was encrypted to other recipients, or its header is damaged; "
              "use the identity file of a recipient it was encrypted to")
        )
    if len(file_key) != FILE_KEY_SIZE:
        raise AgeError(_("invalid age header: the file key is not 16 bytes"))
    return file_key


# --- payload ("Payload": STREAM) -------------------------------------------------------


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
        for _ in range(self._pending[slot]):
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


# --- public API ------------------------------------------------------------------------


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
