"""placeholder: filled in below."""
from __future__ import annotations

from typing import Any


def routes() -> list[tuple[str, Any, tuple[str, ...]]]:
    return []
