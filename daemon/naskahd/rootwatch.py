"""Is the archive still on its disk? Checked by the running daemon (issue 22, fault campaign).

At start the archive root's marker (installation.py) proves the disk is mounted. A disk
unmounted under the running daemon (pulled out, a lazy ``umount``, a failed USB bridge)
leaves the empty mount point in its place, and anything filed then would land on the
root filesystem, hidden once the disk is mounted again. So the daemon looks for its
installation's marker before it takes files and files nothing while it is missing; once
the disk is back it goes on by itself.
"""

from __future__ import annotations

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
