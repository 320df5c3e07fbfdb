"""Which category a file in the drop folder belongs to: the ordered rules, first match wins.

Pure: a function of the drop-relative path and the rules, no disk.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from naskahd.config import Rule


def classify(relpath: str, rules: Sequence[Rule]) -> str | None:
    """The category of ``relpath`` (POSIX, relative to the drop folder), or None for review.

    A rule with both ``path`` and ``name`` needs both to match. ``path`` is an fnmatch
    glob where ``*`` also crosses ``/`` (``masuk/*`` covers every subfolder of masuk),
    matched regardless of case: Windows users create ``Masuk`` or ``MASUK`` folders, and
    SMB shows them so (issue 18).
    """
    name = PurePosixPath(relpath).name
    folded = relpath.casefold()
    for rule in rules:
        if rule.path is not None and not fnmatch.fnmatchcase(folded, _folded(rule.path)):
            continue
        if rule.name is not None and not rule.name.search(name):
            continue
        return rule.category
    return None


@functools.lru_cache(maxsize=64)
def _folded(pattern: str) -> str:
    return pattern.casefold()


def is_ignored(relpath: str, patterns: Sequence[str]) -> bool:
    """True when any component of ``relpath`` matches an ignore glob (``@eaDir`` hides a tree).

    Runs for every event and every scanned entry: the globs are compiled once, together.
    """
    if not patterns:
        return False
    match = _ignore_regex(tuple(patterns))
    return any(match(part) for part in relpath.split("/") if part not in ("", "."))


@functools.lru_cache(maxsize=8)
def _ignore_regex(patterns: tuple[str, ...]):  # noqa: ANN202 - a bound re.Pattern.match
    """One regex for all ``patterns``, matching a whole component as ``fnmatchcase`` does."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match
