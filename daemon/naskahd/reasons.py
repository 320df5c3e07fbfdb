"""Why a file waits, went to review or failed: stored as a stable code plus parameters,
rendered in the reader's language when shown.

The register (``review_items.reason``) and ``state/daemon.json`` keep
``{"code": "no_rule", "params": {...}}`` (JSON text); ``status``, ``review`` and the log
render it with :func:`render` in whatever language their reader chose. A parameter may be
a reason itself (nested), an OS error (``{"errno": 13, "path": ...}``, shown through
naskahd.oserrors with the user naskahd runs as and what to do), or text. Anything stored
before codes existed is plain text and is shown as it is (translated when it is a msgid).
"""

from __future__ import annotations

import json
import os
from typing import Any

from naskahd.i18n import N_, _

REASONS: dict[str, str] = {
    "symlink": N_("a symbolic link (never followed): put the file itself in the drop folder"),
    "fifo": N_("a named pipe (never opened): only scans can be filed"),
    "socket": N_("a socket (never opened): only scans can be filed"),
    "device": N_("a device node (never opened): only scans can be filed"),
    "no_rule": N_("no rule matches its folder or name: move it into masuk/, keluar/ or dikecualikan/"),
    "still_incomplete": N_("still incomplete after {seconds:g} s: {reason}"),
    "empty": N_("the file is empty (0 bytes): scan the letter again"),
    "in_use": N_("a program or a scanner still has it open for writing"),
    "cannot_look": N_("cannot look at it: {error}"),
    "cannot_read": N_("cannot read it: {error}"),
    "cannot_list": N_("cannot look at {path} in the drop folder: {error}; what it holds waits there until it can be read"),
    "cannot_move_to_review": N_("cannot move it to review: {error}"),
    "cannot_open": N_("cannot open it: {error}"),
    "cannot_write_archive": N_("cannot write to the archive: {error}"),
    # For filing's remaining OS failures (still plain text there; convert the call sites):
    "cannot_copy": N_("cannot copy it: {error}"),
    "cannot_move_duplicate": N_("cannot move the duplicate aside: {error}"),
    "cannot_file": N_("cannot file {path}: {error} (retrying)"),
    "exempt_waiting": N_("{n} exempt scan(s) wait in the drop folder: {why}"),
    # Inside "exempt_waiting": does not repeat its words.
    "no_recipient_short": N_("no encryption recipient is configured ([encryption] recipients): add the officer's "
                             "age1... public key and reload"),
    "no_recipient": N_("no encryption recipient is configured ([encryption] recipients): exempt scans wait "
                       "in the drop folder; add the officer's age1... public key and reload"),
    # The register file is damaged (register/db.py): what is wrong and the restore that rebuilds it.
    "register_damaged": N_(
        "the register {path} is damaged (SQLite: {words}); naskahd does not work on a damaged register. "
        "Stop here, keep the damaged file (copy it aside), and restore from the register snapshot on {drive}: "
        "mount it and run 'naskahd restore --from MOUNTPOINT --root NEW-FOLDER' (every hash is checked), then "
        "start naskahd on the restored installation"),
    "backup_drive": N_("the backup drive {name}"),  # inside "register_damaged"
    "newest_backup_drive": N_("your newest backup drive"),  # inside "register_damaged"
}

_PREFIX = '{"code":'
_TEMPLATE_PREFIX = '{"template":'


def encode(code: str, **params: Any) -> str:
    """The stored form of reason ``code`` (a key of REASONS) with its parameters."""
    assert code in REASONS, code
    return json.dumps({"code": code, "params": params}, ensure_ascii=False, separators=(",", ":"))


def encode_template(template: str, **params: Any) -> str:
    """The stored form of a message another module marked with ``N_`` (the completeness
    check's reasons, complete.base.Reason): rendered in the reader's language when shown."""
    return json.dumps({"template": template, "params": params}, ensure_ascii=False, separators=(",", ":"), default=str)


def os_error(exc: OSError, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """An OS error as a parameter: rendered with the path, the user and what to do."""
    where = path if path is not None else exc.filename
    return {"errno": exc.errno, "strerror": exc.strerror, "path": None if where is None else os.fspath(where)}


def _decode(stored: str) -> dict[str, Any] | None:
    if not stored.startswith((_PREFIX, _TEMPLATE_PREFIX)):
        return None
    try:
        value = json.loads(stored)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("template"), str):
        return value
    return value if isinstance(value, dict) and value.get("code") in REASONS else None


def code_of(stored: str | None) -> str | None:
    value = _decode(stored) if stored else None
    return value.get("code") if value else None


def _param(value: Any) -> Any:
    if isinstance(value, dict) and (value.get("code") in REASONS or isinstance(value.get("template"), str)):
        return _render(value)
    if isinstance(value, dict) and "errno" in value:
        from naskahd.oserrors import describe

        exc = OSError(value.get("errno") or 0, value.get("strerror") or os.strerror(value.get("errno") or 0))
        return describe(exc, value.get("path"))
    if isinstance(value, str):
        return render(value)
    return value


def _render(value: dict[str, Any]) -> str:
    template = value["template"] if "template" in value else REASONS[value["code"]]
    params = {k: _param(v) for k, v in (value.get("params") or {}).items()}
    try:
        return _(template).format(**params)
    except (KeyError, IndexError, ValueError):
        return template.format(**params) if params else template


def render(stored: str | None) -> str:
    """``stored`` (a code with parameters, or plain text) in the reader's language."""
    if not stored:
        return ""
    value = _decode(stored)
    if value is None:
        from naskahd.i18n import translate_if_known

        return translate_if_known(stored)
    return _render(value)


def nested(stored: str) -> Any:
    """``stored`` as a parameter of another reason (kept structured, rendered with it)."""
    value = _decode(stored)
    return value if value is not None else stored



