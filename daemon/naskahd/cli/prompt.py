"""Asking a person for a secret on the terminal, or saying plainly why that is impossible."""

from __future__ import annotations

import os
import sys

from naskahd.errors import UsageError
from naskahd.i18n import _


def _has_terminal() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def interactive() -> bool:
    """Whether secrets are typed on a terminal (then asked twice), not piped in."""
    return _has_terminal()


def secret(prompt: str) -> str:
    """A line typed without echo on the terminal; without one, a line piped to standard
    input; a UsageError (exit 2) when there is neither."""
    if _has_terminal():
        import getpass

        try:
            return getpass.getpass(prompt)
        except EOFError:
            pass
    else:
        line = sys.stdin.readline() if sys.stdin is not None else ""
        if line:
            return line.rstrip("\r\n")
    raise UsageError(_("nothing to read a passphrase from: there is no terminal and standard input "
                       "is empty; run the command in a terminal, or give --passphrase-file FILE"))
