"""The daemon's main loop: events → settle → classify → file, one thread owning the register.

Threads: watchdog's observer puts events on a queue; this loop (the main thread) does
everything else, so the register has a single writer and no locks are needed. Signal
handlers only record the signal; the loop acts on it: SIGTERM/SIGINT stop after the batch
in flight, SIGHUP reloads the configuration (reload.py). systemd hears from the loop
(notify.py): READY=1 after reconciliation and the catch-up scan, WATCHDOG=1 from the
heartbeat, STATUS= the summary (summary.py). The status socket (statusd.py) answers the
readers group on a helper thread.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import select

from naskahd import audit, complete, durable, installation, naming, reasons, reload, samba, watch
from naskahd.categories import DROP_FOLDER, EXEMPT
from naskahd.classify import classify
from naskahd.config import Config
from naskahd.filing import Batch, Filer, Outcome, Ready, Result
from naskahd.i18n import _
from naskahd.log import get_logger
from naskahd.notify import Notifier
from naskahd.progress import Progress
from naskahd.register import Document, DocumentState, space_problem
from naskahd.settle import Candidate, Settler, Signature, Verdict
from naskahd.state import InstanceLock, write_heartbeat
from naskahd.statusd import StatusServer
from naskahd.summary import Summary

BATCH = 64  # files per register transaction: small enough that a burst's first files are not kept waiting
HEARTBEAT_SECONDS = 0.5  # at most this often; written only when something changed (or every 30 s)
HALF_DONE_RETRY_SECONDS = 10  # a batch stopped half-way (Daemon._finish) is finished again at most this often

# Reason codes (naskahd.reasons): stored as codes, rendered in the reader's language.
_ODD_TYPES: list[tuple[Callable[[int], bool], str]] = [
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "device"),
    (stat.S_ISBLK, "device"),
]


def make_tree(config: Config) -> None:
    """The drop subfolders per category (SOP step 2) inside existing roots; the roots
    themselves are made only by ``init`` (installation.py)."""
    for name in DROP_FOLDER.values():
        durable.makedirs(config.drop / name)


def parse_recipients(config: Config) -> list[Any]:
    if not config.recipients:
        return []
    from naskahd import age

    return [age.parse_recipient(r) for r in config.recipients]


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.log = get_logger("service")
        self.events: queue.SimpleQueue[watch.Event] = queue.SimpleQueue()
        self.settler = Settler(config.settle_seconds, config.incomplete_after_seconds)
        self.signals: list[int] = []
        self.since = dt.datetime.now(dt.UTC)
        self.problems: list[str] = []  # from start-up reconciliation; persist until restart
        self.held: dict[str, str] = {}  # relpath -> why it waits (exempt without recipient)
        self.failing: dict[str, str] = {}  # relpath -> last error, while retried
        self.unlisted: dict[str, str] = {}  # folder relpath -> why a scan could not list it (watch.scan)
        self._heartbeat_due = 0.0
        self._heartbeat_written = 0.0
        self._last_heartbeat: dict[str, Any] = {}
        self.notifier = Notifier()
        self.summary = Summary()
        self.last_reload: dict[str, Any] = {}  # the last SIGHUP's outcome, for `naskahd reload`
        self.reload_hooks: list[Callable[[Config], None]] = []  # called with a new valid configuration
        self.last_backup: str | None = None  # for STATUS= (set by the drives)
        self._announced = False
        self.progress = Progress(self.log)
        # A batch that stopped half-way (Daemon._finish): (scans, why), shown by `status`
        # until its rows are finished (_retry_half_done) or the next start reconciles them.
        self.half_done: tuple[int, str] | None = None
        self._half_done_retry = 0.0
        self._disk_full = False  # the state disk is full (register.space_problem): logged once
        self._heartbeat_error: str | None = None

    def _audit(self, sessions: Any, event: str, **details: Any) -> None:
        """An audit row of its own; a full or locked register must not turn a start or a clean
        stop into a failure (the log has the event either way)."""
        try:
            audit.record_now(sessions, event, **details)
        except Exception as exc:
            self.log.error("audit.record_failed", event=event, error=self.config.withheld(str(exc)))

    # -- signals: record only ------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)

    def _install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    # -- life ----------------------------------------------------------------------------------
    def run(self, ready_callback: Callable[[], None] | None = None) -> int:
        sessions = installation.open_checked(self.config, create=True)
        make_tree(self.config)
        lock = InstanceLock(self.config.state)
        lock.acquire()
        roots = None
        try:
            roots = installation.lock_roots(self.config)
            self._install_signals()
            try:  # from here a crash (even in start-up reconciliation) reads as one in `status`
                write_heartbeat(self.config.state, {"running": True, "pid": os.getpid(), "starting": True,
                                                    "since": self.since.isoformat(timespec="seconds"), "heartbeat": _iso_now()})
            except OSError as exc:
                self.log.error("state.heartbeat_failed", error=exc.strerror, folder=str(self.config.state))
            self.filer = Filer(self.config, sessions, parse_recipients(self.config))
            self.problems = self.filer.reconcile()
            watcher = watch.Watcher(self.config, self.events)
            if not watch.early_copies_safe(watcher.mode, watcher.fstype):
                self.settler.early_fraction = None  # see Settler.early_fraction
            watcher.start()
            from naskahd.drives.monitor import DriveWatcher  # issue 17: backup drives, own thread

            self.drives = DriveWatcher(self.config)
            self.drives.start()
            self.log.info(
                "daemon.started", pid=os.getpid(), drop=str(self.config.drop), archive=str(self.config.archive),
                watch_mode=watcher.mode, filesystem=watcher.fstype, config=self.config.source,
            )
            self._audit(sessions, "daemon.started", pid=os.getpid(), watch_mode=watcher.mode)
            if self.config.recipient_problem:
                self.log.warning("encryption.no_recipient", problem=self.config.recipient_problem)
            self.watcher = watcher
            self.events.put(watch.Scan(str(self.config.drop), "start-up"))
            self._ready_callback = ready_callback
            statusd = StatusServer(lambda: self.config)
            statusd.start()
            try:
                self._loop()
            finally:
                self.drives.stop()
                self.notifier.stopping()
                statusd.stop()
                watcher.stop()
                self.filer.close()
                try:
                    write_heartbeat(self.config.state, {"running": False, "pid": os.getpid(), "stopped_at": _iso_now()})
                except OSError as exc:  # a full state disk must not turn a clean stop into a crash
                    self.log.error("state.heartbeat_failed", error=exc.strerror, folder=str(self.config.state))
                self.log.info("daemon.stopped", pid=os.getpid())
                self._audit(sessions, "daemon.stopped", pid=os.getpid())
        finally:
            if roots is not None:
                roots.release()
            lock.release()
        return 0

    def _loop(self) -> None:
        next_rescan = time.monotonic() + self.config.rescan_seconds
        while True:
            while self.signals:
                signum = self.signals.pop(0)
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self.log.info("daemon.stopping", signal=signal.Signals(signum).name)
                    return
                self._reload()
                next_rescan = time.monotonic() + self.config.rescan_seconds
            now = time.monotonic()
            if now >= next_rescan:
                self.events.put(watch.Scan(str(self.config.drop), "periodic"))
                next_rescan = now + self.config.rescan_seconds
            self._drain_events()
            if not self._announced:  # reconciliation done, the catch-up scan taken in
                self._announce_ready()
            self._copy_early()
            self._process_due()
            self._retry_half_done()
            self._heartbeat()
            self.progress.tick(len(self.settler), time.monotonic())
            self._wait()

    def _announce_ready(self) -> None:
        self._announced = True
        self.notifier.ready(self.summary.line(self))
        if self._ready_callback:
            self._ready_callback()

    def _reload(self) -> None:
        """SIGHUP: RELOADING=1, the configuration read again (reload.py), READY=1, a rescan."""
        self.notifier.reloading()
        self.last_reload = reload.reload(self)
        self._heartbeat_due = 0.0  # `naskahd reload` waits for the outcome in the heartbeat
        self.notifier.ready(self.summary.line(self))
        self.events.put(watch.Scan(str(self.config.drop), "SIGHUP"))

    def _stop_pending(self) -> bool:
        return any(s in (signal.SIGTERM, signal.SIGINT) for s in self.signals)

    def _wait(self) -> None:
        due = min((t for t in (self.settler.next_due(), self.settler.next_early()) if t is not None), default=None)
        timeout = 0.5 if due is None else max(0.0, min(0.5, due - time.monotonic()))
        if timeout > 0:
            try:
                self.events.put(self.events.get(timeout=timeout))  # woken by an event; handled next round
            except queue.Empty:
                pass

    # -- detect -> settle ----------------------------------------------------------------------
    def _drain_events(self) -> None:
        now = time.monotonic()
        scans: dict[str, str] = {}
        touched: set[str] = set()
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, watch.Scan):
                scans[event.path] = event.reason
            else:
                touched.add(event.path)
        for path, reason in scans.items():
            count = 0
            unreadable: dict[str, OSError] = {}
            for rel, st in watch.scan(self.config, path, unreadable):
                self.settler.touch(rel, Signature.of(st), now)
                count += 1
                if count % 1000 == 0 and hasattr(self, "watcher"):  # a long scan: `status` sees it grow
                    self._heartbeat()
            self._unlisted(path, unreadable)
            self.log.debug("drop.scanned", path=path, reason=reason, entries=count)
            if reason not in ("periodic", "folder appeared"):
                self.log.info("drop.scanned", reason=reason, entries=count)
        for path in touched:
            rel = watch.relative(self.config, path)
            if rel is None:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                self.settler.forget(rel)
                continue
            if not stat.S_ISDIR(st.st_mode):
                self.settler.touch(rel, Signature.of(st), now)

    def _unlisted(self, scanned: str, found: dict[str, OSError]) -> None:
        """Folders a scan of ``scanned`` could not list: a problem for status until a scan can."""
        top = watch.relative(self.config, scanned)
        for rel in [r for r in self.unlisted if top is None or r == top or r.startswith(top + "/")]:
            if rel not in found:
                del self.unlisted[rel]
                self.log.info("drop.readable", path=self._shown(rel))
        for rel, exc in found.items():
            why = self.config.withheld(reasons.encode("cannot_list", path=self._shown(rel),
                                                      error=reasons.os_error(exc, self._where(rel))))
            if rel not in self.unlisted:
                self.log.warning("drop.unreadable", path=self._shown(rel), error=reasons.render(why))
            self.unlisted[rel] = why

    def _copy_early(self) -> None:
        """Start the archive copy of files quiet for part of their settle time (Filer.prestore,
        settle.EARLY_FRACTION).

        Only a copy: the file is taken when it is due and stable, and the copy is used
        only if the file is still the very same then. Nothing here is shown to a person:
        whatever is wrong with a file is found when it is due.
        """
        for cand in self.settler.early(time.monotonic()):
            rel = cand.relpath
            try:
                st = os.lstat(self.config.drop / rel)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_size == 0 or Signature.of(st) != cand.signature:
                continue
            category = classify(rel, self.config.rules)
            if category is None or (category == EXEMPT and not self.filer.recipients):
                continue
            self.filer.prestore(Ready(rel, category, cand.signature))

    def _process_due(self) -> None:
        """File what is due, a batch at a time, two batches in flight: the next batch's
        stores run on the store threads while this thread finishes the previous one."""
        pending: Batch | None = None
        try:
            while True:
                now = time.monotonic()
                # Asked to stop: take nothing new; the batch in flight is finished below.
                due = [] if self._stop_pending() else self.settler.due(now, limit=BATCH)
                busy = {item.relpath for item in pending.items} if pending else set()
                ready: list[Ready] = []
                for cand in due:
                    if cand.relpath in busy:  # being taken by the batch in flight: its outcome decides
                        self.settler.postpone(cand, now)
                        continue
                    busy.add(cand.relpath)
                    item = self._examine(cand, now)
                    if item is not None:
                        ready.append(item)
                previous, pending = pending, (self.filer.begin(ready) if ready else None)
                if previous is not None:
                    self._finish(previous)
                if pending is None and not due:
                    return
                self._drain_events()  # keep the queue short during a burst
                self._copy_early()
                self._heartbeat()
                self.progress.tick(len(self.settler), time.monotonic())
        finally:
            if pending is not None:  # only if an exception is on its way out
                self._finish(pending)

    def _finish(self, batch: Batch) -> None:
        try:
            results = self.filer.finish(batch)
        except Exception as exc:  # e.g. the register's disk is full at the final commit
            # Whatever the batch left half-done is a STAGED row; seeing the same scan
            # again finishes that row (filing.Filer._is_unfinished), never refiles it.
            error = self.config.withheld(str(exc))
            self.log.error("filing.batch_failed", error=error, files=len(batch.items))
            results = [Result(item, Outcome.FAILED, error) for item in batch.items]
            # Its sources may already be gone (a failed final commit): the scans would not
            # come back, so `status` says so until _retry_half_done finishes the rows.
            before = self.half_done[0] if self.half_done else 0
            self.half_done = (before + len(batch.items), self.config.withheld(_reason(exc)))
            self._half_done_retry = time.monotonic() + HALF_DONE_RETRY_SECONDS
        for result in results:
            self._after(result)

    def _retry_half_done(self) -> None:
        """Finish the rows a batch that stopped half-way left STAGED, as start-up
        reconciliation does. Called between batches: no batch is in flight, so every
        STAGED row is such a leftover. At most every HALF_DONE_RETRY_SECONDS, and only
        while the register's disk has room."""
        if self.half_done is None or time.monotonic() < self._half_done_retry:
            return
        self._half_done_retry = time.monotonic() + HALF_DONE_RETRY_SECONDS
        if space_problem(self.config.database_url) is not None:
            return
        try:
            with self.filer.sessions() as session:
                rows = session.scalars(select(Document).where(Document.state == DocumentState.STAGED)).all()
            outcomes = [self.filer.reconciler.finish(doc) for doc in rows]
        except Exception as exc:  # the register still cannot be written
            self.log.warning("filing.finish_retry_failed", error=_reason(exc))
            return
        # What only a person can settle stays a problem until the next start reconciles it.
        self.problems += [o for o in outcomes if isinstance(o, str) and o not in self.problems]
        self.log.info("filing.half_done_finished", documents=len(rows))
        self.half_done = None

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
        in_use = reasons.encode("in_use")
        kind = None
        if self.config.content_check:  # the content check and the writer probe are separate protections
            try:
                verdict = known or complete.check(path)
            except BlockingIOError:  # Samba with `kernel oplocks = yes`: a client holds an oplock
                return None, in_use
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
            return kind, in_use
        return kind, None

    # -- outcomes ------------------------------------------------------------------------------
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
            self.log.error("review.record_failed", path=self._shown(rel), error=_reason(exc))
        self._forget(rel)

    # -- heartbeat for `status` ----------------------------------------------------------------
    def _heartbeat(self) -> None:
        now = time.monotonic()
        self.notifier.tick(now)  # only this loop pings: if it hangs, systemd restarts the service
        if now < self._heartbeat_due:
            return
        self._heartbeat_due = now + HEARTBEAT_SECONDS
        # Early copies of files that changed since (or went without an event) are thrown away.
        self.filer.prune_early(lambda rel: c.signature if (c := self.settler.candidates.get(rel)) else None)
        problems = self._state_problems() + list(self.problems) + [self.unlisted[r] for r in sorted(self.unlisted)[:20]]
        # Stored as codes (naskahd.reasons): `status` renders them in its reader's language.
        problems += [
            reasons.encode("cannot_file", path=self._shown(p), error=reasons.nested(e))
            for p, e in sorted(self.failing.items())[:20]
        ]
        held = sorted(self.held)
        if held:
            problems.append(reasons.encode("exempt_waiting", n=len(held), why=reasons.nested(next(iter(self.held.values())))))
        waiting = [
            {"path": self._shown(c.relpath), "reason": c.incomplete}
            for c in list(self.settler.candidates.values())[:200] if c.incomplete
        ]
        problems = [self.config.withheld(p) for p in problems]  # error texts carry paths
        data = {
            "running": True, "pid": os.getpid(), "since": self.since.isoformat(timespec="seconds"),
            "watch_mode": self.watcher.mode, "filesystem": self.watcher.fstype,
            "pending": len(self.settler), "waiting": waiting, "problems": problems,
            "drives": self.drives.snapshot(),
            "reload": self.last_reload,
        }
        self.notifier.status(self.summary.line(self))
        if data != self._last_heartbeat or now >= self._heartbeat_written + 30:
            try:
                write_heartbeat(self.config.state, {**data, "heartbeat": _iso_now()})
            except OSError as exc:  # not even in place (state.write_heartbeat): keep running, retry
                if self._heartbeat_error is None:
                    self.log.error("state.heartbeat_failed", error=exc.strerror, folder=str(self.config.state))
                self._heartbeat_error = exc.strerror
                return
            self._heartbeat_error = None
            self._last_heartbeat, self._heartbeat_written = data, now

    def _state_problems(self) -> list[str]:
        """The state disk's trouble, first (state.write_heartbeat keeps the first problems
        when a heartbeat rewritten in place must be cut)."""
        problems: list[str] = []
        full = space_problem(self.config.database_url)
        if (full is not None) != self._disk_full:
            self._disk_full = full is not None
            if full is not None:
                self.log.error("state.disk_full", folder=str(self.config.state), problem=full)
            else:
                self.log.info("state.disk_space_back", folder=str(self.config.state))
        if full is not None:
            problems.append(_(
                "naskahd keeps running, but the disk of its state folder {folder} is full: scans that "
                "cannot be registered wait in the drop folder; free space on that disk"
            ).format(folder=self.config.state))
        if self.half_done is not None:
            problems.append(_(
                "filing of {n} scan(s) stopped half-way ({error}): naskahd finishes them as soon as the "
                "register can be written again, or at its next start; do not drop them again"
            ).format(n=self.half_done[0], error=self.half_done[1]))
        return problems


def _reason(exc: BaseException) -> str:
    """An error's own words: a database error without the SQL statement and its parameters."""
    return str(getattr(exc, "orig", None) or exc)


def _iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
