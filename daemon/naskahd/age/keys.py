"""Native recipient types: X25519 and scrypt recipients and identities, and parsing them
from text ("Native recipient types")."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Protocol, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from naskahd.errors import AgeError
from naskahd.i18n import _
from naskahd.age.primitives import FILE_KEY_SIZE, SCRYPT_DEFAULT_LOG2N, SCRYPT_LABEL, SCRYPT_MAX_LOG2N, Stanza, TAG, X25519_LABEL, _ZERO_NONCE, _b64decode, _b64encode, _hkdf, bech32_decode, bech32_encode


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
