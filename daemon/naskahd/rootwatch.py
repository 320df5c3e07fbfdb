"""Are the archive and the drop folder still where the daemon started? Checked by the
running daemon (issue 22, fault campaign).

At start the archive root's marker (installation.py) proves the disk is mounted. A disk
unmounted under the running daemon (pulled out, a lazy ``umount``, a failed USB bridge)
leaves the empty mount point in its place, and anything filed then would land on the
root filesystem, hidden once the disk is mounted again. So the daemon looks for its
installation's marker before it takes files and files nothing while it is missing; once
the disk is back it goes on by itself.

The drop folder deleted (a person tidying the share) and made again on the same
filesystem (a new inode, or the old number again but without the marker): the daemon's
watch went with the old folder, and the category subfolders are missing. The new folder is adopted: marked and locked as the old one was, its
subfolders made, watched anew and scanned.
"""

from __future__ import annotations

import fcntl
import os
import time
from typing import Any

from naskahd import installation
from naskahd.config import Config
from naskahd.i18n import _

CHECK_SECONDS = 0.2  # for status and waiting, the marker is read at most this often


class ArchiveWatch:
    def __init__(self, config: Config, log: Any) -> None:
        self.config, self.log = config, log
        self.ident = (installation.read_marker(config.archive) or {}).get("installation")
        self.gone = False
        self._checked = 0.0

    def problem(self, *, fresh: bool = False) -> str | None:
        """Why nothing may be written into the archive now, or None; logged when it changes.
        ``fresh``: read the marker now (before writing), not at most every CHECK_SECONDS."""
        now = time.monotonic()
        if fresh or now >= self._checked + CHECK_SECONDS:
            self._checked = now
            marker = installation.read_marker(self.config.archive)
            gone = marker is None or marker.get("installation") != self.ident
            if gone != self.gone:
                self.gone = gone
                if gone:
                    self.log.error("archive.gone", folder=str(self.config.archive), problem=self._text())
                else:
                    self.log.info("archive.back", folder=str(self.config.archive))
        return self._text() if self.gone else None

    def _text(self) -> str:
        return _(
            "the archive folder {path} no longer holds naskahd's marker ({marker}): its disk is not mounted "
            "there any more. Nothing is filed until it is; scans wait in the drop folder. Mount the disk "
            "there again: naskahd goes on by itself"
        ).format(path=self.config.archive, marker=installation.MARKER)


class DropWatch:
    def __init__(self, config: Config, log: Any, ident: str | None) -> None:
        self.config, self.log, self.ident = config, log, ident
        st = os.stat(config.drop)
        self.where = (st.st_dev, st.st_ino)
        self.problem: str | None = None
        self._checked = 0.0
        self._fd: int | None = None

    def check(self) -> bool:
        """True when the drop folder was made again and has been adopted: the caller makes
        its subfolders, watches it anew and scans it."""
        now = time.monotonic()
        if now < self._checked + CHECK_SECONDS:
            return False
        self._checked = now
        drop = self.config.drop
        try:
            st = os.stat(drop)
        except OSError:
            return self._trouble("drop.gone", _(
                "the drop folder {path} is gone (deleted, or its disk is not mounted): scanners cannot drop "
                "letters into it. Make the folder again or mount its disk: naskahd makes its subfolders and goes "
                "on by itself"
            ).format(path=drop))
        marker = installation.read_marker(drop)
        if (st.st_dev, st.st_ino) == self.where and marker is not None and marker.get("installation") == self.ident:
            self._clear()
            return False  # (a folder made again may get the old inode number: its missing marker tells)
        if st.st_dev != self.where[0]:
            return self._trouble("drop.other_disk", _(
                "the drop folder {path} is now on another disk than when naskahd started (its disk is not "
                "mounted?): nothing new is taken from it. Mount its disk again, or restart naskahd if the move "
                "was meant"
            ).format(path=drop))
        installation.mark(drop, "drop", self.ident or installation.new_id())
        if (installation.read_marker(drop) or {}).get("installation") != self.ident:
            return self._trouble("drop.not_ours", _(
                "the drop folder {path} was made again and holds another installation's marker: nothing new is "
                "taken from it; check [paths] in {config}"
            ).format(path=drop, config=self.config.source))
        if self._fd is not None:  # our own lock on an earlier marker would refuse this one
            os.close(self._fd)
            self._fd = None
        fd = os.open(drop / installation.MARKER, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return self._trouble("drop.not_ours", _(
                "the drop folder {path} was made again and another naskahd holds it: nothing new is taken from it"
            ).format(path=drop))
        self._fd, self.where = fd, (st.st_dev, st.st_ino)
        self.log.warning("drop.recreated", folder=str(drop))
        self.problem = None
        return True

    def retry(self) -> None:
        """Watching the adopted folder failed: adopt it again at the next check."""
        self.where = (self.where[0], -1)

    def _trouble(self, event: str, text: str) -> bool:
        if self.problem != text:
            self.log.error(event, folder=str(self.config.drop), problem=text)
        self.problem = text
        return False

    def _clear(self) -> None:
        if self.problem is not None:
            self.log.info("drop.back", folder=str(self.config.drop))
        self.problem = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
