"""What the daemon does with each outcome of a batch (service.Daemon): forget what was
taken, restart what changed, hold what waits for a recipient, retry what failed, move to
review what only a person can settle; an exempt letter's name withheld throughout."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from naskahd import naming, reasons
from naskahd.categories import DROP_FOLDER, EXEMPT
from naskahd.classify import classify
from naskahd.filing import Outcome, Result
from naskahd.settle import Candidate, Signature


class Outcomes:
    """Mixin of service.Daemon: a batch's outcomes, and the names shown for them."""

    def _after(self, result: Result) -> None:
        rel = result.item.relpath
        cand = self.settler.candidates.get(rel)
        now = time.monotonic()
        if result.outcome in (Outcome.FILED, Outcome.DUPLICATE, Outcome.STUCK, Outcome.GONE):
            self._forget(rel)
            self.progress.taken()
            # A new file under the same name (a rewrite that arrived while the batch ran):
            # its event was folded into the candidate just forgotten, so look at it now
            # rather than at the next periodic scan.
            try:
                st = os.lstat(self.config.drop / rel)
            except OSError:
                return
            if not stat.S_ISDIR(st.st_mode):
                self.settler.touch(rel, Signature.of(st), now)
        elif result.outcome is Outcome.CHANGED and cand is not None:
            self.log.info("document.changed", path=self._shown(rel), detail=result.detail)
            self.settler.restart(cand, now)
        elif result.outcome is Outcome.HELD and cand is not None:
            self._hold(cand, result.detail)
        elif result.outcome is Outcome.FAILED and cand is not None:
            self._failed(cand, result.detail, now)

    def _shown(self, rel: str) -> str:
        """``rel`` for logs and status: an exempt letter's file name is withheld."""
        return naming.shown_relpath(rel, exempt=self._exempt(rel))

    def _where(self, rel: str) -> Path:
        """The path an OS error names: an exempt letter's folder only, never its name."""
        path = self.config.drop / rel
        return path.parent if self._exempt(rel) else path

    def _forget(self, rel: str) -> None:
        self.settler.forget(rel)
        self.filer.discard_early(rel)
        self.held.pop(rel, None)
        self.failing.pop(rel, None)

    def _hold(self, cand: Candidate, why: str) -> None:
        if cand.relpath not in self.held:
            self.log.warning("document.held", path=self._shown(cand.relpath), reason=reasons.render(why))
        self.held[cand.relpath] = why
        self.settler.hold(cand)

    def _failed(self, cand: Candidate, why: str, now: float) -> None:
        delay = self.settler.retry_later(cand, now)
        self.failing[cand.relpath] = why = self.config.withheld(why)
        self.log.warning("document.failed", path=self._shown(cand.relpath), error=reasons.render(why), retry_in=round(delay, 1), attempts=cand.failures)

    def _exempt(self, rel: str) -> bool:
        """Is ``rel`` an exempt letter, or in the exempt drop folder whatever the rules say?
        Either way its name is withheld and it is kept apart in review."""
        return rel.split("/", 1)[0] == DROP_FOLDER[EXEMPT] or classify(rel, self.config.rules) == EXEMPT

    def _review(self, rel: str, why: str, st: os.stat_result) -> None:
        try:
            self.filer.to_review(rel, why, Signature.of(st), exempt=self._exempt(rel))
        except OSError as exc:
            cand = self.settler.candidates.get(rel)
            if cand is not None:
                self._failed(cand, reasons.encode("cannot_move_to_review", error=reasons.os_error(exc, self._where(rel))), time.monotonic())
            return
        except Exception as exc:  # moved, but the register could not record why (its disk is full)
            self.log.error("review.record_failed", path=self._shown(rel), error=db_reason(exc))
        self._forget(rel)



def db_reason(exc: BaseException) -> str:
    """An error's own words: a database error without the SQL statement and its parameters."""
    return str(getattr(exc, "orig", None) or exc)

