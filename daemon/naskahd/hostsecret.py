"""The host secret: 32 random bytes in ``state/host.secret`` (mode 0600), made on first use.

It exists only on this host and is never copied to a drive or a report. It keys:
- the identity tokens written onto registered backup drives (HMAC-SHA256 over the drive id
  and the filesystem UUID), so a look-alike drive with the same UUID and label is refused;
- what the register and the logs keep of an exempt letter's content (HMAC-SHA256 of its
  plaintext instead of the plain SHA-256), so holding a candidate document confirms nothing
  to someone without the host.

Losing the file loses neither letters nor the register: drives must be registered again,
and exempt duplicates are recognised again from then on.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from naskahd import durable

NAME = "host.secret"
SIZE = 32


def path(state: Path) -> Path:
    return state / NAME


def load(state: Path, *, create: bool = True) -> bytes:
    """The host secret, created (durably, mode 0600, never overwritten) when missing and
    ``create`` is set. A racing creator's file wins: both then read the same one."""
    p = path(state)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        if not create:
            raise
        try:
            durable.write_bytes(p, secrets.token_bytes(SIZE), mode=0o600)
        except FileExistsError:
            pass
        data = p.read_bytes()
    if len(data) != SIZE:
        raise ValueError(f"{p}: a host secret is {SIZE} bytes, this file has {len(data)}")
    return data


def keyed(secret: bytes, purpose: str, data: bytes) -> str:
    """HMAC-SHA256 of ``data`` under a key derived for ``purpose``, as hex. One secret serves
    several purposes without one's tags ever standing for another's."""
    key = hmac.new(secret, b"naskahd/" + purpose.encode(), hashlib.sha256).digest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


__all__ = ["NAME", "SIZE", "keyed", "load", "path"]
