"""Where plaintext must never be written: naskahd's own folders and its backup drives.

An exempt letter decrypted into the archive would be copied, in plaintext, onto every
backup drive; into the drop folder it would be filed again, maybe unencrypted. A folder is
protected when it is (or is inside) one of:

- the configured drop, archive or state folder, when a configuration loads;
- a folder carrying naskahd's root marker ``.naskahd-root`` (``naskahd init`` writes it
  into the drop, archive and state roots), so roots of another configuration, or of a
  configuration this user cannot read, count too;
- a backup drive: a folder holding ``naskah/.naskahd/`` (the drive's root) or a folder
  ``naskah`` holding ``.naskahd/`` (issue 17's layout).

Pure path logic plus ``lstat`` of a few names in each parent folder; nothing is created.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from naskahd.config import ROOT_MARKER
from naskahd.i18n import _

MARKER_NAME = ROOT_MARKER  # the root marker `naskahd init` writes (installation.py)
DRIVE_FOLDER = "naskah"  # a backup drive's tree (issue 17)
DRIVE_META = ".naskahd"  # naskah/.naskahd/: the drive's token, manifest, register copy


def absolute(path: Path | str) -> Path:
    """``path`` made absolute, symlinks kept (to name it in a message as the user wrote it)."""
    return Path(os.path.abspath(path))


def _real(path: Path | str) -> Path:
    """``path`` absolute with every symlink of its existing part resolved (the part that
    does not exist yet is kept as written)."""
    return Path(os.path.realpath(os.path.abspath(path)))


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _exists(path: Path) -> bool:
    try:
        return os.path.lexists(path)
    except OSError:
        return False


def _marked(folder: Path) -> str | None:
    """Why ``folder`` itself is protected by what it holds, or None."""
    if _exists(folder / MARKER_NAME):
        return _("the naskahd folder {folder} (it holds {marker})").format(folder=folder, marker=MARKER_NAME)
    if folder.name == DRIVE_FOLDER and _is_dir(folder / DRIVE_META):
        return _("the backup drive folder {folder}").format(folder=folder)
    if _is_dir(folder / DRIVE_FOLDER / DRIVE_META):
        return _("the backup drive {folder}").format(folder=folder)
    return None


def inside_protected(path: Path | str, cfg: Any | None = None) -> str | None:
    """The protected place ``path`` is in or is (a translated phrase naming the folder,
    for a message), or None when plaintext may be written there."""
    target = _real(path)
    if cfg is not None:
        for folder, what in (
            (cfg.archive, _("the archive {folder}")),
            (cfg.state, _("the state folder {folder}")),
            (cfg.drop, _("the drop folder {folder}")),
        ):
            root = _real(folder)
            if target == root or root in target.parents:
                return what.format(folder=root)
    for folder in (target, *target.parents):
        why = _marked(folder)
        if why is not None:
            return why
    return None
