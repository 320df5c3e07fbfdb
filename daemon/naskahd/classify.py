"""Which category a file in the drop folder belongs to: the ordered rules, first match wins.

Pure: a function of the drop-relative path and the rules, no disk.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import PurePosixPath

from naskahd.config import Rule


def classify(relpath: str, rules: Sequence[Rule]) -> str | None:
    """The category of ``relpath`` (POSIX, relative to the drop folder), or None for review.

    A rule with both ``path`` and ``name`` needs both to match. ``path`` is an fnmatch
    glob where ``*`` also crosses ``/`` (``masuk/*`` covers every subfolder of masuk).
    """
    name = PurePosixPath(relpath).name
    for rule in rules:
        if rule.path is not None and not fnmatch.fnmatchcase(relpath, rule.path):
            continue
        if rule.name is not None and not rule.name.search(name):
            continue
        return rule.category
    return None


def is_ignored(relpath: str, patterns: Sequence[str]) -> bool:
    """True when any component of ``relpath`` matches an ignore glob (``@eaDir`` hides a tree)."""
    return any(
        fnmatch.fnmatchcase(part, pattern) for part in PurePosixPath(relpath).parts for pattern in patterns
    )
