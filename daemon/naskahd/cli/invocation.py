"""How a person runs naskahd from where they are: for messages that print a command.

``naskahd`` when that name on PATH is this program; otherwise the path that works from
the current folder (``.venv/bin/naskahd`` after ``make run``), or ``python -m naskahd``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _shown(path: Path) -> str:
    try:
        rel = path.absolute().relative_to(Path.cwd())
    except ValueError:
        return shlex.quote(str(path.absolute()))
    return shlex.quote(str(rel)) if "/" in str(rel) else shlex.quote(f"./{rel}")


def program() -> str:
    """The command that starts this naskahd, as typed in a shell from the current folder."""
    on_path = shutil.which("naskahd")
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    candidates = []
    if argv0 is not None and argv0.name == "naskahd":
        candidates.append(argv0)
    candidates.append(Path(sys.executable).parent / "naskahd")
    for script in candidates:
        if not script.exists():
            continue
        if on_path and _same(Path(on_path), script):
            return "naskahd"
        return _shown(script)
    return f"{shlex.quote(sys.executable)} -m naskahd"


def command(*args: str) -> str:
    return " ".join([program(), *(shlex.quote(a) for a in args)])
