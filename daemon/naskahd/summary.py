"""The one-line summary systemd shows (``STATUS=``, in ``systemctl status naskahd``).

"documents today 3, waiting 1, in review 0, last backup -": today is the office's day;
waiting are files in the drop folder not filed yet; in review the files in drop/tinjau;
the last backup is the newest verified sync of any registered drive (the register's
``drives.last_verified_at``, or ``Daemon.last_backup`` where set). No letter's
name is ever in it. The register is counted at most every ``COUNT_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import TYPE_CHECKING

from naskahd.i18n import _

if TYPE_CHECKING:
    from naskahd.service import Daemon

COUNT_SECONDS = 2.0


class Summary:
    def __init__(self) -> None:
        self._today = 0
        self._backup: str | None = None  # the newest verified backup on any drive, office time
        self._counted = -COUNT_SECONDS

    def documents_today(self, daemon: Daemon, now: float) -> int:
        if now - self._counted >= COUNT_SECONDS:
            from sqlalchemy import func, select

            from naskahd.register import Document, Drive

            tz = daemon.config.timezone
            midnight = dt.datetime.combine(dt.datetime.now(tz).date(), dt.time(), tzinfo=tz).astimezone(dt.UTC)
            try:
                with daemon.filer.sessions() as s:
                    self._today = s.scalar(select(func.count()).select_from(Document).where(Document.received_at >= midnight)) or 0
                    newest = s.scalar(select(func.max(Drive.last_verified_at)))
                self._backup = newest.astimezone(tz).strftime("%Y-%m-%d %H:%M") if newest is not None else None
            except Exception:  # a busy or failing register must not stop the loop; the last count stays
                pass
            self._counted = now
        return self._today

    def line(self, daemon: Daemon) -> str:
        try:
            review = sum(1 for e in os.scandir(daemon.config.review_dir) if not e.is_dir(follow_symlinks=False))
        except OSError:
            review = 0
        today = self.documents_today(daemon, time.monotonic())
        return _("documents today {today}, waiting {waiting}, in review {review}, last backup {backup}").format(
            today=today, waiting=len(daemon.settler), review=review, backup=daemon.last_backup or self._backup or "-",
        )
