"""File names on the drive: what NTFS, exFAT and FAT32 accept. Pure.

Every drive gets the same mapping, whatever its filesystem (a drive may be read on
another system later): no ``< > : " / \\ | ? *`` or control characters, no trailing dot or
space, no DOS device names, at most 255 UTF-16 code units, and names that differ only in
case (or Unicode form) are made distinct deterministically: the first document (lowest
register id) keeps the name, later ones get `` (2)``, `` (3)``, ... The register's
``copies.drive_path`` and the drive's manifest record the mapping.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

MAX_UNITS = 255
_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]|[\ud800-\udfff]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
_TRAILING = re.compile(r"[. ]+$")


def units(name: str) -> int:
    """Length in UTF-16 code units, as NTFS and exFAT count it."""
    return len(name.encode("utf-16-le", "surrogatepass")) // 2


def fold(name: str) -> str:
    """The key under which two names clash on a case-insensitive filesystem (conservative:
    a few more names clash than on NTFS, which only costs a `` (2)``)."""
    if name.isascii():  # NFC leaves ASCII as it is; its casefold is its lower case
        return name.lower()
    return unicodedata.normalize("NFC", name).casefold()


def _split(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot > 0 and len(name) - dot <= 16:
        return name[:dot], name[dot:]
    return name, ""


def _fit(base: str, suffix: str, limit: int = MAX_UNITS) -> str:
    while base and units(base + suffix) > limit:
        base = base[:-1]
    if not base:  # a suffix alone over the limit: cut the whole name
        name = base + suffix
        while units(name) > limit:
            name = name[:-1]
        return name
    return base + suffix


_BAD_ASCII = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')


def _plain(name: str) -> bool:
    """An ASCII name that every target accepts as it is (the common case, checked fast)."""
    return (name.isascii() and 0 < len(name) <= MAX_UNITS and name[-1] not in ". " and _BAD_ASCII.search(name) is None
            and name.split(".", 1)[0].upper() not in _RESERVED)


@functools.lru_cache(maxsize=4096)  # folder names repeat for every file in them
def component(name: str) -> str:
    """One path component as every target filesystem accepts it."""
    return name if _plain(name) else _component(name)


def _component(name: str) -> str:
    mapped = _FORBIDDEN.sub("_", name)
    trail = _TRAILING.search(mapped)
    if trail:
        mapped = mapped[: trail.start()] + "_" * len(trail.group())
    if not mapped:
        return "_"
    if _split(mapped)[0].split(".")[0].upper() in _RESERVED:
        mapped = "_" + mapped
    base, suffix = _split(mapped)
    fitted = _fit(base, suffix)
    trail = _TRAILING.search(fitted)  # a cut can end the name on a dot or a space again
    return fitted[: trail.start()] + "_" * len(trail.group()) if trail else fitted


def numbered(name: str, n: int) -> str:
    base, suffix = _split(name)
    tag = f" ({n})"
    return _fit(base, tag + suffix) if units(base + tag + suffix) > MAX_UNITS else base + tag + suffix


def drive_path(archive_path: str, taken: set[str]) -> str:
    """The path on the drive (relative to ``naskah/``) for ``archive_path``; ``taken`` holds
    the folded drive paths already used on that drive and gets this one added."""
    parts = [component(p) for p in archive_path.split("/")]
    folder = "/".join(parts[:-1])
    name = parts[-1]
    def full(leaf: str) -> str:
        return f"{folder}/{leaf}" if folder else leaf

    n, path = 1, full(name)
    while fold(path) in taken:
        n += 1
        path = full(numbered(name, n))
    taken.add(fold(path))
    return path


def folded(paths: Iterable[str]) -> set[str]:
    return {fold(p) for p in paths}
