"""Undo what a set-up step created when it fails half-way: nothing half-made left behind.

``with Undo(paths):`` notes which of ``paths`` do not exist yet (for a folder that does not
exist, its first missing ancestor); if the block raises, each of them that exists now is
removed, whole, since this process created it. What existed before is never touched.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType


def _first_missing(path: Path) -> Path | None:
    if path.exists() or path.is_symlink():
        return None
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


class Undo:
    def __init__(self, paths: Iterable[Path]) -> None:
        found = {_first_missing(Path(p)) for p in paths}
        self.new = sorted((p for p in found if p is not None), key=lambda p: len(p.parts))

    def __enter__(self) -> Undo:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            return
        for path in self.new:
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.exists() or path.is_symlink():
                    os.unlink(path)
            except OSError:
                pass  # best effort: the error on its way out says what went wrong
