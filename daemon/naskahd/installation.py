"""An installation's identity: a marker in each root, held locked while a daemon runs.

``naskahd init`` writes ``.naskahd-root`` into the drop, archive and state folders, each
holding the same installation id, which the register records too. Every start checks
them, so a disk that is not mounted is never silently replaced by the empty folder under
its mount point: letters would be filed onto the root filesystem and later hidden under the
mount, or (the state disk) a fresh register would issue agenda numbers a second time.
Only ``init`` creates roots; ``run`` and the other commands refuse a root that does not
exist, carries no marker, or carries another installation's.

While the daemon runs it holds an flock on each root's marker (the state folder also has
its instance lock, state.py), so a second configuration pointing at the same drop folder
or archive is refused, naming the other daemon (``.naskahd-owner``: its pid and
configuration).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from naskahd import durable
from naskahd.config import ROOT_MARKER, ROOT_OWNER, Config
from naskahd.errors import NaskahdError
from naskahd.i18n import N_, _

MARKER = ROOT_MARKER
OWNER = ROOT_OWNER
ROLES = ("drop", "archive", "state")


class RootError(NaskahdError):
    """A root folder is missing, not naskahd's, or another installation's."""


class RootInUse(NaskahdError):
    message = N_("the {role} folder {path} is in use by another naskahd (pid {pid}, configuration {config}); "
                 "stop that one first, or give this one its own folders")


def roots(config: Config) -> dict[str, Path]:
    return {"drop": config.drop, "archive": config.archive, "state": config.state}


def _role_name(role: str) -> str:
    return {"drop": _("drop"), "archive": _("archive"), "state": _("state")}[role]


def read_marker(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def mark(root: Path, role: str, installation_id: str) -> None:
    """Create ``root`` (if need be) and its marker, unless it already carries one."""
    durable.makedirs(root)
    if read_marker(root) is None:
        body = {"installation": installation_id, "role": role, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        durable.write_bytes(root / MARKER, json.dumps(body).encode(), mode=0o644)


def write_markers(config: Config, installation_id: str) -> None:
    """Create the roots and their markers (``init``, or the embedded default's first start)."""
    for role, root in roots(config).items():
        mark(root, role, installation_id)


def check_roots(config: Config) -> str:
    """The installation id the roots agree on; RootError naming the first one that is wrong."""
    found: str | None = None
    for role, root in roots(config).items():
        if not root.is_dir():
            if root.exists():
                raise RootError(_("the {role} folder {path} is not a folder; check [paths] in {config}").format(
                    role=_role_name(role), path=root, config=config.source))
            raise RootError(_(
                "the {role} folder {path} does not exist. If it is on a disk of its own, mount that disk "
                "and start again; for a new installation, run 'naskahd init'"
            ).format(role=_role_name(role), path=root))
        marker = read_marker(root)
        if marker is None:
            raise RootError(_(
                "the {role} folder {path} is not a naskahd folder (no {marker} in it). If its disk is not mounted, "
                "mount it and start again; for a new installation, run 'naskahd init'"
            ).format(role=_role_name(role), path=root, marker=MARKER))
        ident = marker.get("installation")
        if not isinstance(ident, str) or not ident:
            raise RootError(_("the marker {path} is damaged; ask for help before you start naskahd").format(path=root / MARKER))
        if found is not None and ident != found:
            raise RootError(_(
                "the {role} folder {path} belongs to another naskahd installation than the other folders; "
                "check [paths] in {config}"
            ).format(role=_role_name(role), path=root, config=config.source))
        found = ident
    assert found is not None
    return found


def has_markers(config: Config) -> bool:
    return any(read_marker(root) is not None for root in roots(config).values() if root.is_dir())


@dataclass
class RootLocks:
    """flocks on the drop's and the archive's markers, held for the daemon's life."""

    fds: list[int]

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def lock_roots(config: Config) -> RootLocks:
    """Lock the drop and archive roots for this daemon; RootInUse names the other one."""
    fds: list[int] = []
    try:
        for role in ("drop", "archive"):
            root = roots(config)[role]
            fd = os.open(root / MARKER, os.O_RDONLY | os.O_CLOEXEC)
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_owner(root)
                raise RootInUse(role=_role_name(role), path=str(root), pid=owner.get("pid", "?"),
                                config=owner.get("config", "?")) from None
        for role in ("drop", "archive"):
            body = {"pid": os.getpid(), "config": config.source, "state": str(config.state)}
            durable.write_bytes(roots(config)[role] / OWNER, json.dumps(body).encode(), overwrite=True, mode=0o644)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return RootLocks(fds)


def _read_owner(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / OWNER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def new_id() -> str:
    return str(uuid.uuid4())


def _archive_has_files(config: Config) -> bool:
    for _dirpath, _dirs, files in os.walk(config.archive):
        if any(f not in (MARKER, OWNER) for f in files):
            return True
    return False


def _recorded(sessions: Any) -> str | None:
    from sqlalchemy import select

    from naskahd.register import Installation

    with sessions() as s:
        return s.scalars(select(Installation.installation_id)).first()


def _record(sessions: Any, ident: str) -> None:
    from naskahd.register import Installation

    with sessions.begin() as s:
        s.add(Installation(installation_id=ident, created_at=dt.datetime.now(dt.UTC)))


def initialise(config: Config) -> str:
    """A new installation: roots, markers, register (``init``; the embedded default's first
    start). Never over an existing one: roots that already carry a marker keep it."""
    from naskahd.register import open_register

    ident = new_id()
    write_markers(config, ident)
    ident = check_roots(config)
    sessions = open_register(config.database_url)
    recorded = _recorded(sessions)
    if recorded is None:
        _record(sessions, ident)
    elif recorded != ident:
        raise RootError(_("the register {path} belongs to another installation than these folders").format(path=config.register_path))
    return ident


def mark_restored(config: Config, sessions: Any) -> str:
    """After ``naskahd restore``: mark the new roots with the restored register's
    installation id (one is recorded first for a snapshot from before markers)."""
    ident = _recorded(sessions)
    if ident is None:
        ident = new_id()
        _record(sessions, ident)
    write_markers(config, ident)
    return ident


def _adopt_legacy(config: Config) -> bool:
    """An installation made before markers existed: its roots exist, none has a marker, and
    its register records no installation. Adopted (markers written, id recorded) only if
    the archive holds the register's newest document, so an unmounted archive disk is
    never adopted in its place. Returns whether it adopted."""
    from sqlalchemy import select

    from naskahd.register import Document, open_register

    if has_markers(config) or not config.register_path.exists():
        return False
    if not all(root.is_dir() for root in roots(config).values()):
        return False
    sessions = open_register(config.database_url)
    if _recorded(sessions) is not None:
        return False
    with sessions() as s:
        newest = s.scalars(select(Document).order_by(Document.id.desc()).limit(1)).first()
    if newest is not None and not (config.archive / newest.archive_path).exists():
        return False
    ident = new_id()
    write_markers(config, ident)
    _record(sessions, ident)
    return True


def open_checked(config: Config, *, create: bool, integrity: bool = False) -> Any:
    """Check that the roots and the register belong to one installation and open the
    register (``create``: the daemon, which may create or migrate it; ``integrity``: the
    full damage check first, register/db.py ``integrity_problem``). Returns the session
    factory; RootError (exit 1) says what is wrong and what to do.

    The embedded default (``make run``) initialises its own root the first time.
    """
    from naskahd.log import get_logger
    from naskahd.register import open_register

    log = get_logger("installation")
    if create and config.embedded and not any(root.exists() for root in roots(config).values()):
        initialise(config)
        log.warning("installation.created", root=str(config.drop.parent), config=config.source)
    elif create and _adopt_legacy(config):
        log.warning("installation.adopted", config=config.source)
    ident = check_roots(config)
    if not config.register_path.exists():
        if _archive_has_files(config):
            raise RootError(_(
                "the register {path} is missing, but the archive {archive} holds documents: it is never made "
                "anew (agenda numbers would be given twice). Mount the disk that holds it, or restore it from "
                "a backup drive (naskahd restore)"
            ).format(path=config.register_path, archive=config.archive))
        if not create:
            raise RootError(_("the register {path} does not exist yet; start the daemon once").format(path=config.register_path))
    sessions = open_register(config.database_url, create=create, integrity=integrity)
    recorded = _recorded(sessions)
    if recorded is None and create:
        _record(sessions, ident)
    elif recorded is not None and recorded != ident:
        raise RootError(_(
            "the register {path} belongs to another installation than the folders in {config}; "
            "check [paths], or mount the right disk"
        ).format(path=config.register_path, config=config.source))
    return sessions
