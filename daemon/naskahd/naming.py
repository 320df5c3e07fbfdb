"""How documents are named in the archive. Pure.

Ordinary letters keep their original name after the agenda number
(``0001-M-2026_surat undangan.pdf``); exempt letters are named by agenda number only
(``0007-D-2026.pdf.age``), since a file name can reveal a letter's subject.
"""

from __future__ import annotations

import re

from naskahd.i18n import N_

NAME_MAX = 255  # bytes, ext4/NTFS/exFAT alike
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def display_name(raw: bytes) -> str:
    """A file name for people: exact where it is UTF-8, bad bytes shown as \\xNN."""
    return raw.decode("utf-8", errors="backslashreplace")


def _clean(raw: bytes) -> str:
    # Undecodable bytes and control characters (newlines!) become '_' in the archive
    # name; the exact original bytes are kept in the register.
    return _CONTROL.sub("_", raw.decode("utf-8", errors="replace").replace("\ufffd", "_"))


def _fit(text: str, budget: int) -> str:
    """Cut ``text`` to at most ``budget`` UTF-8 bytes without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= budget:
        return text
    return data[:budget].decode("utf-8", errors="ignore")


def safe_suffix(raw: bytes) -> str:
    """The file's extension, lower-cased, if it is a short plain one (``.pdf``), else ''."""
    name = _clean(raw)
    dot = name.rfind(".")
    suffix = name[dot:] if dot > 0 else ""
    return suffix.lower() if _SAFE_SUFFIX.fullmatch(suffix) else ""


def archive_name(stem: str, raw_name: bytes, *, exempt: bool) -> str:
    """The archive file name for a document with agenda stem ``stem`` (``0001-M-2026``)."""
    if exempt:
        return f"{stem}{safe_suffix(raw_name)}.age"
    name = _clean(raw_name)
    suffix = safe_suffix(raw_name)
    base = name[: len(name) - len(suffix)] if suffix and name.lower().endswith(suffix) else name
    budget = NAME_MAX - len(stem.encode()) - 1 - len(suffix.encode())
    return f"{stem}_{_fit(base, budget)}{name[len(base):] if suffix else ''}"


def numbered(name: str, n: int) -> str:
    """``scan.pdf`` → ``scan (2).pdf``: a free name beside an existing one, within NAME_MAX.

    ``name`` is an OS file name (undecodable bytes as surrogate escapes), kept as it is.
    """
    raw = name.encode("utf-8", "surrogateescape")
    dot = raw.rfind(b".")
    base, suffix = (raw[:dot], raw[dot:]) if dot > 0 and len(raw) - dot <= 16 else (raw, b"")
    tag = f" ({n})".encode()
    base = base[: max(0, NAME_MAX - len(tag) - len(suffix))]
    return (base + tag + suffix).decode("utf-8", "surrogateescape")


# Exempt letters' names are never written in plaintext to the register, the state folder
# or the log: they can reveal the subject. Where a path must be recorded or shown, its
# file name is withheld (the drop folder itself still holds the file, for a person to see).
WITHHELD = N_("[name withheld]")  # logs keep it in English; people see _(WITHHELD)


def recorded_relpath(relpath: str, *, exempt: bool) -> bytes:
    """The drop-relative path as the register keeps it: nothing at all for exempt letters."""
    return b"" if exempt else relpath.encode("utf-8", "surrogateescape")


def shown_relpath(relpath: str, *, exempt: bool) -> str:
    """The drop-relative path for logs and status; exempt letters' file names withheld."""
    if not exempt:
        return display_name(relpath.encode("utf-8", "surrogateescape"))
    folder = relpath.rpartition("/")[0]
    return f"{folder}/{WITHHELD}" if folder else WITHHELD


def name_key(name: str) -> str:
    """How the register refers to a file in the review folder without storing its name."""
    import hashlib

    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()


def scrub(text: str, drop: str, exempt_folders: tuple[str, ...]) -> str:
    """``text`` (an error message, a problem) with every exempt letter's path in it cut to
    its folder: ``/srv/drop/dikecualikan/Rahasia.pdf`` → ``/srv/drop/dikecualikan/[name withheld]``.

    Error texts from the OS, SQLite or a library carry full paths; they go through here
    before they reach a log, ``status`` or a problem list. ``exempt_folders``: the
    drop-relative folders whose files are exempt (the exempt drop folder, and where exempt
    items wait: the holding folder's and review's copies of it).
    """
    for folder in exempt_folders:
        for prefix in (f"{drop.rstrip('/')}/{folder}/", f"{folder}/"):
            text = re.sub(re.escape(prefix) + r"[^'\"\n]+", prefix.replace("\\", "\\\\") + WITHHELD, text)
    return text
