"""Where things are on a backup drive. Everything naskahd writes is under ``naskah/``:

    naskah/<category>/<YYYY>/<MM>/<name>   the archive's tree, names mapped (names.py)
    naskah/.naskahd/token.json             the identity token (token.py)
    naskah/.naskahd/manifest.jsonl         one line per verified document: agenda, category,
                                           archive path, path on the drive, size, SHA-256,
                                           and its whole register row; a line per register
                                           snapshot (appended: a sync costs what is new)
    naskah/.naskahd/register.sqlite3       the register, a consistent snapshot (SQLite's
                                           online backup API), refreshed by a sync that
                                           copies something once it is an hour old; rows
                                           registered since are in the manifest
    naskah/.naskahd/naskahd.toml           the configuration (no secrets are in it)

The drive alone is enough for ``naskahd restore``. Exempt letters are on it only as their
``.age`` files, named by agenda number.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
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


# One encoder (json.dumps with options builds one per call); ASCII (other characters as
# \u escapes, which every JSON reader takes, a name's lone surrogate too) and no check for
# circular references (a record is a tree of plain values): twice as fast, a line per file.
_ENCODER = json.JSONEncoder(check_circular=False)


def manifest_line(record: dict[str, Any]) -> bytes:
    return (_ENCODER.encode(record) + "\n").encode("ascii")


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


def encode_row(keys: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """A register row as JSON: bytes as {"b64": ...}, times as ISO 8601, enums by value."""
    out = {}
    for key, value in zip(keys, values):
        kind = type(value)
        if kind is bytes:
            value = {"b64": base64.b64encode(value).decode()}
        elif kind is dt.datetime:
            value = {"time": value.isoformat()}
        elif isinstance(value, enum.Enum):
            value = value.value
        out[key] = value
    return out


def _encode_value(value: Any) -> Any:
    kind = type(value)
    if kind is bytes:
        return {"b64": base64.b64encode(value).decode()}
    if kind is dt.datetime:
        return {"time": value.isoformat()}
    if isinstance(value, enum.Enum):
        return value.value
    return value


def row_encoder(table: Any) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """``encode_row`` for rows of ``select(table)``, faster: only the columns whose type may
    need it (bytes, times, enums) are looked at, each with the conversion of its column's
    type (``_encode_value`` for a value of another type); a sync encodes a row per file."""
    keys = [c.name for c in table.columns]
    special = []
    for i, col in enumerate(table.columns):
        kind = _python_type(col.type)
        if kind not in (int, str, float, bool):
            special.append((i, keys[i], kind, _CONVERT.get(kind) or (_enum_values(kind) if _is_enum(kind) else None)))

    def encode(values: Sequence[Any]) -> dict[str, Any]:
        out = dict(zip(keys, values))
        for i, key, kind, convert in special:
            value = values[i]
            if value is not None:
                if convert is None or type(value) is not kind:
                    out[key] = _encode_value(value)
                elif type(convert) is dict:
                    out[key] = convert[value]
                else:
                    out[key] = convert(value)
        return out

    return encode


def _python_type(sqltype: Any) -> Any:
    for t in (sqltype, getattr(sqltype, "impl", None)):  # a TypeDecorator: its implementation's
        try:
            kind = t.python_type
        except (NotImplementedError, AttributeError):
            continue
        if kind is not object:
            return kind
    return None


def _is_enum(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, enum.Enum)


def _enum_values(kind: type[enum.Enum]) -> dict[Any, Any]:
    return {member: member.value for member in kind}


_CONVERT: dict[Any, Callable[[Any], Any]] = {
    bytes: lambda v: {"b64": binascii.b2a_base64(v, newline=False).decode("ascii")},  # = base64.b64encode
    dt.datetime: lambda v: {"time": v.isoformat()},
}


def decode_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict) and "b64" in value:
            value = base64.b64decode(value["b64"])
        elif isinstance(value, dict) and "time" in value:
            value = dt.datetime.fromisoformat(value["time"])
        out[key] = value
    return out
