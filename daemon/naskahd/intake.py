"""A due candidate's checks before it is filed (service.Daemon): still settling, an odd
type, no rule, not complete yet (the content check and the writer probe), exempt without a
recipient. Pure of the register; what is wrong goes to review or waits."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from naskahd import complete, reasons, samba, watch
from naskahd.categories import EXEMPT
from naskahd.classify import classify
from naskahd.filing import Ready
from naskahd.settle import Candidate, Signature, Verdict

# Reason codes (naskahd.reasons): stored as codes, rendered in the reader's language.
_ODD_TYPES: list[tuple[Callable[[int], bool], str]] = [
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "device"),
    (stat.S_ISBLK, "device"),
]


class Intake:
    """Mixin of service.Daemon: the checks of a due candidate."""

    def _examine(self, cand: Candidate, now: float) -> Ready | None:
        """Settle, check content, classify. Returns a Ready item, or None (waits, review, gone)."""
        rel = cand.relpath
        path = self.config.drop / rel
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self._forget(rel)
            return None
        except OSError as exc:
            self._failed(cand, reasons.encode("cannot_look", error=reasons.os_error(exc, self._where(rel))), now)
            return None
        if stat.S_ISDIR(st.st_mode):
            self._forget(rel)
            self.events.put(watch.Scan(str(path), "folder appeared"))
            return None
        for test, code in _ODD_TYPES:
            if test(st.st_mode):
                self._review(rel, reasons.encode(code), st)
                return None
        if self.settler.observe(cand, Signature.of(st), now) is Verdict.WAIT:
            return None
        category = classify(rel, self.config.rules)
        if category is None:
            self._review(rel, reasons.encode("no_rule"), st)
            return None
        try:
            kind, reason = self._completeness(path, st.st_size, self.filer.early_check(rel, cand.signature))
        except OSError as exc:
            self._failed(cand, reasons.encode("cannot_read", error=reasons.os_error(exc, self._where(rel))), now)
            return None
        if reason is not None:
            if self.settler.incomplete(cand, reason, now) is Verdict.GIVE_UP:
                self._review(rel, reasons.encode("still_incomplete", seconds=self.config.incomplete_after_seconds,
                                                 reason=reasons.nested(reason)), st)
            else:
                self.log.debug("document.incomplete", path=self._shown(rel), reason=reasons.render(reason))
            return None
        if category == EXEMPT and not self.filer.recipients:
            self._hold(cand, reasons.encode("no_recipient_short"))
            return None
        return Ready(rel, category, cand.signature or Signature.of(st), kind)

    def _completeness(self, path: Path, size: int, known: complete.Completeness | None = None) -> tuple[str | None, str | None]:
        """(detected type, why it is not complete yet or None). OSError: cannot read it.

        ``known``: the content check's verdict on these very bytes, made with the file's
        early copy (filing.Filer.early_check); the bytes are not read again.
        """
        if size == 0:
            return None, reasons.encode("empty")
        kind = None
        if self.config.content_check:  # the content check and the writer probe are separate protections
            try:
                verdict = known or complete.check(path)
            except BlockingIOError:  # Samba with `kernel oplocks = yes`: a client holds an oplock
                return None, reasons.encode("in_use")
            if not verdict.complete:
                why = verdict.why  # stored as its template and values: shown in each reader's language
                return verdict.kind, reasons.encode_template(why.template, **dict(why.params)) if why else verdict.reason
            kind = verdict.detected_type  # "pdf-repaired": damaged but whole, opened by repair as readers do
            if verdict.repaired:
                self.log.info("document.repaired", path=self._shown(os.path.relpath(path, self.config.drop)),
                              note=verdict.note.english() if verdict.note else None)
        # Whole by its content, but a writer (an SMB client through smbd, or a local
        # program) may still hold it open: a TIFF between pages looks finished too.
        if samba.open_for_write(path) is True:
            return kind, reasons.encode("in_use")
        return kind, None

