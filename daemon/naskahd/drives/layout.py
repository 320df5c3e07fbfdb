"""Where things are on a backup drive. Everything naskahd writes is under ``naskah/``:

    naskah/<category>/<YYYY>/<MM>/<name>   the archive's tree, names mapped (names.py)
    naskah/.naskahd/token.json             the identity token (token.py)
    naskah/.naskahd/manifest.jsonl         one line per verified document: agenda, category,
                                           archive path, path on the drive, size, SHA-256;
                                           and a line per register snapshot (appended, so a
                                           sync costs what is new, not the whole archive)
    naskah/.naskahd/register.sqlite3       the register, a consistent snapshot (SQLite's
                                           online backup API), as of the last sync
    naskah/.naskahd/naskahd.toml           the configuration (no secrets are in it)

The drive alone is enough for ``naskahd restore``. Exempt letters are on it only as their
``.age`` files, named by agenda number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

ROOT = "naskah"
META = f"{ROOT}/.naskahd"
TOKEN = f"{META}/token.json"
MANIFEST = f"{META}/manifest.jsonl"
REGISTER = f"{META}/register.sqlite3"
CONFIG = f"{META}/naskahd.toml"


def on_drive(drive_path: str) -> str:
    """The path of a document's file relative to the drive's root."""
    return f"{ROOT}/{drive_path}"


def manifest_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def read_manifest(data: bytes) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """(documents by agenda, the newest register snapshot record). A torn last line (the
    drive pulled while appending) is ignored: its document is copied again next time."""
    docs: dict[str, dict[str, Any]] = {}
    snapshot = None
    for rec in _lines(data):
        if rec.get("kind") == "document":
            docs[rec["agenda"]] = rec
        elif rec.get("kind") == "register":
            snapshot = rec
    return docs, snapshot


def _lines(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            yield rec
