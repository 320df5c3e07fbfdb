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
from types import FrameType
from typing import Any

from sqlalchemy import select

from naskahd import audit, durable, installation, reasons, reload, watch
from naskahd.categories import DROP_FOLDER, EXEMPT
from naskahd.classify import classify
from naskahd.config import Config
from naskahd.errors import RegisterDamaged
from naskahd.filing import Batch, Filer, Outcome, Ready, Result
from naskahd.heartbeat import Heartbeat, iso_now
from naskahd.intake import Intake
from naskahd.log import get_logger
from naskahd.notify import Notifier
from naskahd.outcomes import Outcomes, db_reason
from naskahd.progress import Progress
from naskahd.register import Document, DocumentState, space_problem
from naskahd.rootwatch import ArchiveWatch, DropWatch
from naskahd.settle import Settler, Signature
from naskahd.state import InstanceLock, record_refusal, write_heartbeat
from naskahd.statusd import StatusServer
from naskahd.summary import Summary

BATCH = 64  # files per register transaction: small enough that a burst's first files are not kept waiting
HALF_DONE_RETRY_SECONDS = 10  # a batch stopped half-way (Daemon._finish) is finished again at most this often
# The search index's catch-up, left during a burst (Daemon._index_idle): documents per
# transaction (a few tens of ms), done only while no file is due for INDEX_QUIET_SECONDS;
# the pause after a failure.
INDEX_CHUNK, INDEX_QUIET_SECONDS, INDEX_RETRY_SECONDS = 256, 0.25, 10
# At most this long per turn of the loop, so the heartbeat and the watchdog's ping come
# between chunks however large the backlog (tens of thousands after a burst or a restore).
INDEX_TURN_SECONDS = 1.0


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


class Daemon(Intake, Outcomes, Heartbeat):
    """The loop; a due candidate's checks (intake.py), a batch's outcomes (outcomes.py)
    and the heartbeat (heartbeat.py) are its mixins."""

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
        self.overflows = watch.Overflows()  # inotify queue overflows and their rescans, for `status`
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
        self._index_behind = True  # documents may lie above the search index (a burst, a restore)
        self._index_retry = 0.0

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
        try:  # every page of the register checked before anything works on it
            sessions = installation.open_checked(self.config, create=True, integrity=True)
        except RegisterDamaged as exc:
            record_refusal(self.config.state, exc.reason, self.config.register_path)
            raise
        make_tree(self.config)
        lock = InstanceLock(self.config.state)
        lock.acquire()
        roots = None
        try:
            roots = installation.lock_roots(self.config)
            self.archive_watch = ArchiveWatch(self.config, self.log)
            self.drop_watch = DropWatch(self.config, self.log, self.archive_watch.ident)
            self._install_signals()
            try:  # from here a crash (even in start-up reconciliation) reads as one in `status`
                write_heartbeat(self.config.state, {"running": True, "pid": os.getpid(), "starting": True,
                                                    "since": self.since.isoformat(timespec="seconds"), "heartbeat": iso_now()})
            except OSError as exc:
                self.log.error("state.heartbeat_failed", error=exc.strerror, folder=str(self.config.state))
            self.filer = Filer(self.config, sessions, parse_recipients(self.config))
            self.problems = self.filer.reconcile()
            watcher = watch.Watcher(self.config, self.events, self.overflows)
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
                self.watcher.stop()
                self.filer.close()
                self.drop_watch.close()
                try:
                    write_heartbeat(self.config.state, {"running": False, "pid": os.getpid(), "stopped_at": iso_now()})
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
            if self.drop_watch.check():
                self._watch_again()
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
            self._index_idle()
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

    def _watch_again(self) -> None:
        """The drop folder was made again (rootwatch.DropWatch): its subfolders, a watch on it."""
        try:
            make_tree(self.config)
            self.watcher.stop()
            self.watcher = watch.Watcher(self.config, self.events, self.overflows)
            self.watcher.start()
        except OSError as exc:  # gone again meanwhile, or no inotify watch left: tried again
            self.log.error("drop.watch_failed", folder=str(self.config.drop), error=exc.strerror)
            self.drop_watch.retry()
            return
        self.events.put(watch.Scan(str(self.config.drop), "drop folder made again"))

    def _archive_gone(self, fresh: bool = True) -> bool:
        return hasattr(self, "archive_watch") and self.archive_watch.problem(fresh=fresh) is not None

    def _stop_pending(self) -> bool:
        return any(s in (signal.SIGTERM, signal.SIGINT) for s in self.signals)

    def _wait(self) -> None:
        due = min((t for t in (self.settler.next_due(), self.settler.next_early()) if t is not None), default=None)
        timeout = 0.5 if due is None or self._archive_gone(fresh=False) else max(0.0, min(0.5, due - time.monotonic()))
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
                if scans.get(event.path) != watch.OVERFLOW:  # that one's scan must say it is done
                    scans[event.path] = event.reason
            else:
                touched.add(event.path)
        for path, reason in scans.items():
            count = 0
            unreadable: dict[str, OSError] = {}
            covered = None
            if reason == watch.OVERFLOW:  # events were lost: `status` says so until this scan is done
                covered = self.overflows.rescan_started()
                self.log.warning("drop.events_lost", overflows=covered, reason=reason)
                if hasattr(self, "watcher"):
                    self._heartbeat_due = 0.0
                    self._heartbeat()
            for rel, st in watch.scan(self.config, path, unreadable):
                self.settler.touch(rel, Signature.of(st), now)
                count += 1
                if count % 1000 == 0 and hasattr(self, "watcher"):  # a long scan: `status` sees it grow
                    self._heartbeat()
            if covered is not None:
                self.overflows.rescan_done(covered, count)
                self._heartbeat_due = 0.0  # the notice goes at once
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
        if self._archive_gone():
            return
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
                # The archive's disk gone: take nothing until it is back (rootwatch.py).
                due = [] if self._stop_pending() or self._archive_gone() else self.settler.due(now, limit=BATCH)
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
                    # A burst (another batch in flight, files waiting): its documents enter
                    # the search index once nothing waits (_index_idle), off the burst's path.
                    self._finish(previous, index_now=pending is None and not self._index_behind)
                if pending is None and not due:
                    return
                self._drain_events()  # keep the queue short during a burst
                self._copy_early()
                self._heartbeat()
                self.progress.tick(len(self.settler), time.monotonic())
        finally:
            if pending is not None:  # only if an exception is on its way out
                self._finish(pending)

    def _finish(self, batch: Batch, index_now: bool = False) -> None:
        if not index_now:
            self._index_behind = True
        try:
            results = self.filer.finish(batch, index_now=index_now)
        except Exception as exc:  # e.g. the register's disk is full at the final commit
            # Whatever the batch left half-done is a STAGED row; seeing the same scan
            # again finishes that row (filing.Filer._is_unfinished), never refiles it.
            error = self.config.withheld(str(exc))
            self.log.error("filing.batch_failed", error=error, files=len(batch.items))
            results = [Result(item, Outcome.FAILED, error) for item in batch.items]
            # Its sources may already be gone (a failed final commit): the scans would not
            # come back, so `status` says so until _retry_half_done finishes the rows.
            before = self.half_done[0] if self.half_done else 0
            self.half_done = (before + len(batch.items), self.config.withheld(db_reason(exc)))
            self._half_done_retry = time.monotonic() + HALF_DONE_RETRY_SECONDS
        for result in results:
            self._after(result)

    def _index_idle(self) -> None:
        """Take the documents a burst left above the search index into it (searches find them
        meanwhile by a scan: letters/index.py), a chunk per transaction, while no file is due
        soon and no event waits, for at most INDEX_TURN_SECONDS; the rest at the next turn of
        the loop."""
        turn_ends = time.monotonic() + INDEX_TURN_SECONDS
        while self._index_behind and time.monotonic() >= self._index_retry and self.events.empty():
            if time.monotonic() >= turn_ends:
                return
            due = self.settler.next_due()
            if (due is not None and due < time.monotonic() + INDEX_QUIET_SECONDS) or self._stop_pending() \
                    or self._archive_gone(fresh=False):
                return
            try:
                done = self.filer.catch_up_index(INDEX_CHUNK)
            except Exception as exc:  # the register cannot be written now: later
                self.log.warning("letters.index_failed", error=self.config.withheld(db_reason(exc)))
                self._index_retry = time.monotonic() + INDEX_RETRY_SECONDS
                return
            self._index_behind = done >= INDEX_CHUNK

    def _retry_half_done(self) -> None:
        """Finish the rows a batch that stopped half-way left STAGED, as start-up
        reconciliation does. Called between batches: no batch is in flight, so every
        STAGED row is such a leftover. At most every HALF_DONE_RETRY_SECONDS, and only
        while the register's disk has room."""
        if self.half_done is None or time.monotonic() < self._half_done_retry or self._archive_gone():
            return
        self._half_done_retry = time.monotonic() + HALF_DONE_RETRY_SECONDS
        if space_problem(self.config.database_url) is not None:
            return
        try:
            with self.filer.sessions() as session:
                rows = session.scalars(select(Document).where(Document.state == DocumentState.STAGED)).all()
            outcomes = [self.filer.reconciler.finish(doc) for doc in rows]
        except Exception as exc:  # the register still cannot be written
            self.log.warning("filing.finish_retry_failed", error=db_reason(exc))
            return
        # What only a person can settle stays a problem until the next start reconciles it.
        self.problems += [o for o in outcomes if isinstance(o, str) and o not in self.problems]
        self.log.info("filing.half_done_finished", documents=len(rows))
        self.half_done = None
