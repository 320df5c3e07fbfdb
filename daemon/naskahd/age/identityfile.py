"""Identity files: plain ``AGE-SECRET-KEY-1`` lines, or a passphrase-protected age file
holding them."""

from __future__ import annotations

import io
from collections.abc import Callable

from naskahd.errors import AgeError
from naskahd.i18n import _
from naskahd.age.primitives import ARMOR_BEGIN, _WHITESPACE
from naskahd.age.keys import Identity, _parse_identity
from naskahd.age.reader import _open_input
from naskahd.age.header import _read_header
from naskahd.age.api import decrypt_stream


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
