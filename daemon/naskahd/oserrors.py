"""OS errors for people: what failed, on which path, as which user, and what to do.

``Permission denied`` or ``Read-only file system`` alone tell an operator little; the
same error through :func:`describe` names the path, the user naskahd runs as, and the
fix, in the reader's language. Pure but for the user-name look-up.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from naskahd.i18n import N_, _

# errno -> (what happened, what to do). {path}, {folder} and {user} are filled in.
_EXPLAINED: dict[int, tuple[str, str]] = {
    errno.EACCES: (N_("permission denied for the user {user}"),
                   N_("give the user {user} access to {folder} (chown or chmod), or run naskahd as a user who has it")),
    errno.EPERM: (N_("the operation is not permitted for the user {user}"),
                  N_("give the user {user} access to {folder} (chown or chmod), or run naskahd as a user who has it")),
    errno.EROFS: (N_("the file system is read-only"),
                  N_("remount the disk that holds {folder} read-write, and check it for errors")),
    errno.ENOSPC: (N_("the disk is full"), N_("free space on the disk that holds {folder}")),
    errno.EDQUOT: (N_("the disk quota of the user {user} is used up"), N_("free space or raise the quota")),
    errno.ENOENT: (N_("it does not exist"), N_("check the path, or create the folder")),
    errno.ENOTDIR: (N_("a part of the path is a file, not a folder"), N_("choose a path made of folders")),
    errno.EISDIR: (N_("it is a folder, not a file"), N_("give the path of a file")),
    errno.EEXIST: (N_("it already exists"), N_("choose another name, or remove the old one first")),
    errno.EIO: (N_("the disk reported an input/output error"), N_("check the disk (dmesg, smartctl) before going on")),
    errno.ENAMETOOLONG: (N_("the path is longer than the system allows"),
                         N_("move the files into a folder with a shorter path (at most 4096 bytes in all, 255 per name)")),
}


def user_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())


def describe(exc: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """``cannot use /srv/x: permission denied for the user naskahd; give the user ...``."""
    where = path if path is not None else exc.filename
    user = user_name()
    folder = Path(where).parent if where is not None and exc.errno not in (errno.EROFS,) else where
    try:
        if where is not None and Path(where).is_dir():
            folder = where
    except OSError:  # the path itself is the trouble (too long, a loop): describing it must not fail
        pass
    what, todo = _EXPLAINED.get(exc.errno or 0, (None, None))
    what_text = _(what).format(user=user) if what else (exc.strerror or str(exc))
    todo_text = _(todo).format(user=user, folder=folder or "-", path=where or "-") if todo else ""
    if where is None:
        head = what_text
    else:
        head = _("{path}: {problem}").format(path=where, problem=what_text)
    return _("{problem}; {todo}").format(problem=head, todo=todo_text) if todo_text else head


def reason(exc: OSError) -> str:
    """What went wrong, in the reader's language, without the path (``permission denied for
    the user naskahd``); for messages that name the path themselves."""
    what = _EXPLAINED.get(exc.errno or 0, (None, None))[0]
    return _(what).format(user=user_name()) if what else (exc.strerror or str(exc))
