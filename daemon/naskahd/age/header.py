"""The header ("Header", its ABNF): parsing, the stanza mix rules, the header MAC, and
unwrapping the file key with the given identities."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from naskahd.errors import AgeError
from naskahd.i18n import _
from naskahd.age.primitives import COLUMNS, FILE_KEY_SIZE, Stanza, VERSION_LINE, _B64_RAW, _HEADER_LINE_MAX, _HEADER_MAX, _b64decode, _b64encode, _hkdf
from naskahd.age.keys import Identity, ScryptIdentity, _check_scrypt_stanza
from naskahd.age.reader import _Reader


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
