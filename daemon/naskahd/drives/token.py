"""The identity token on a registered drive. Pure apart from the host secret passed in.

The token holds a random drive id and an HMAC-SHA256 over that id and the filesystem's
UUID, keyed by the host secret (``hostsecret.keyed(secret, "drive-token", ...)``). A UUID
or a label is only a pre-filter (anyone can make a look-alike with the same ones); only a
drive whose token verifies under this host's secret, for the drive id the register
recorded, ever receives data.
"""

from __future__ import annotations

import hmac
import json
import secrets

from naskahd import hostsecret
from naskahd.i18n import _

PURPOSE = "drive-token"
FORMAT = 1


def new_drive_id() -> str:
    return secrets.token_hex(16)


def tag(secret: bytes, drive_id: str, uuid: str) -> str:
    return hostsecret.keyed(secret, PURPOSE, f"{drive_id}\0{uuid.lower()}".encode())


def render(secret: bytes, drive_id: str, uuid: str) -> bytes:
    body = {"naskahd_drive_token": FORMAT, "drive_id": drive_id, "hmac": tag(secret, drive_id, uuid)}
    return (json.dumps(body, sort_keys=True) + "\n").encode()


def problem(secret: bytes, data: bytes | None, *, drive_id: str, uuid: str) -> str | None:
    """Why the token ``data`` (None: no token file) does not prove this is the registered
    drive ``drive_id`` with filesystem ``uuid``; None when it does."""
    if data is None:
        return _("it has no naskahd identity token: it is not the registered drive, or the token was removed")
    try:
        body = json.loads(data.decode("utf-8"))
        got_id, got_tag = body["drive_id"], body["hmac"]
        if body.get("naskahd_drive_token") != FORMAT or not isinstance(got_id, str) or not isinstance(got_tag, str):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return _("its identity token is damaged")
    if not hmac.compare_digest(got_id, drive_id):
        return _("its identity token belongs to another drive")
    if not hmac.compare_digest(got_tag, tag(secret, drive_id, uuid)):
        return _("its identity token does not verify with this host's secret (a copied token, or another host's drive)")
    return None
