"""What is wrong with a text given as an age recipient, in plain words.

Shared by the configuration (``[encryption] recipients``), ``naskahd init -r`` and
``naskahd encrypt -r``: a pasted private key, an SSH key or a mistyped ``age1…`` each get
a sentence that says what it is and what naskahd needs instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from naskahd.i18n import _

SSH_PREFIXES = ("ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-", "-----begin openssh")


def is_secret_key(text: str) -> bool:
    return text.strip().upper().startswith("AGE-SECRET-KEY-")


def problem(text: str) -> str | None:
    """None if ``text`` is a usable ``age1…`` recipient, else why not (never echoing a secret)."""
    from naskahd import age
    from naskahd.errors import AgeError

    value = text.strip()
    if not value:
        return _("it is empty: put the officer's age public key (age1…) here")
    if is_secret_key(value):
        return _("this is a private key, which must never be on this host: put the officer's public key "
                 "(age1...) here, and remove this private key from the file")
    if value.lower().startswith(SSH_PREFIXES):
        return _("this is an SSH key, naskahd needs an age public key (age1…): create one with "
                 "'naskahd keygen -o FILE' on the officer's computer and use the age1… line it prints")
    if not value.lower().startswith("age1"):
        return _("not an age public key: it must start with age1 (the line 'naskahd keygen' prints)")
    try:
        age.parse_recipient(value)
    except AgeError:
        return _("not a valid age public key: check that it was copied whole (age1 followed by 58 letters "
                 "and digits)")
    return None


def shown(text: str) -> str:
    """The value as it may appear in a message: a secret key is never echoed."""
    return "AGE-SECRET-KEY-1…" if is_secret_key(text) else text.strip()


def parse_all(texts: Iterable[str]) -> list[Any]:
    """The recipients, or a UsageError (exit code 2) naming the first bad one."""
    from naskahd import age
    from naskahd.errors import UsageError

    out = []
    for text in texts:
        why = problem(text)
        if why is not None:
            raise UsageError(_("recipient {value!r}: {reason}").format(value=shown(text), reason=why))
        out.append(age.parse_recipient(text))
    return out
