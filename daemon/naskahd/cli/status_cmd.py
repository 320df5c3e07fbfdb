"""``naskahd status [--json]``: is everything fine? Works whether or not the daemon runs.

Exit code 0 healthy, 1 something needs a person, 3 the daemon is not running. A full state
disk is 1 even when the daemon is not running: the register is then not opened at all
(SQLite's memory-mapped -shm could kill `status` with SIGBUS), and what `status` says
comes from the heartbeat and the filesystem.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from typing import Any

from naskahd.errors import EXIT_ATTENTION, EXIT_NOT_RUNNING, EXIT_OK, RegisterError
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help=_("show whether the daemon runs and what needs a person"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    p.set_defaults(func=run)


def _count_drop(cfg: Any) -> tuple[int, int]:
    """(files waiting in the drop folder, of them exempt) when no daemon keeps count."""
    from naskahd import watch
    from naskahd.categories import EXEMPT
    from naskahd.classify import classify

    total = exempt = 0
    for rel, _st in watch.scan(cfg):
        total += 1
        exempt += classify(rel, cfg.rules) == EXEMPT
    return total, exempt


def _review_files(folder: Any, problems: list[str]) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if not e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
    except OSError as exc:  # a file put where the folder goes, or its permissions taken away
        problems.append(_folder_problem(folder, exc))
        return []


def _folder_problem(folder: Any, exc: OSError) -> str:
    from naskahd.oserrors import reason

    return _("{folder} is not a folder naskahd can use ({error}): it keeps the files that need a person there; "
             "move whatever took its name away, or give the folder back its permissions").format(folder=folder, error=reason(exc))


def _exempt_review_keys(cfg: Any) -> Any:
    """The keys exempt review items are recorded under, if this user may read the host
    secret; otherwise None (their reasons are then not shown, their names never are)."""
    from naskahd.filing.keys import ExemptKeys

    try:
        return ExemptKeys.of_existing(cfg.state)
    except (OSError, ValueError):
        return None


def _count_files(folder: Any, problems: list[str] | None = None) -> int:
    try:
        return sum(1 for e in os.scandir(folder) if not e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return 0
    except OSError as exc:
        if problems is not None:
            problems.append(_folder_problem(folder, exc))
        return 0


def gather(cfg: Any, sessions: Any = None) -> dict[str, Any]:
    """What ``status`` says, as data. ``sessions``: an open register (the web page keeps
    one), else it is opened here."""
    from sqlalchemy import func, select

    from naskahd import daemoninfo, installation, naming, state
    from naskahd.categories import CATEGORIES, DROP_FOLDER, EXEMPT
    from naskahd.reasons import encode, nested, render
    from naskahd.register import Document, DocumentState, ReviewItem, space_problem

    running = state.daemon_running(cfg.state)
    beat = state.read_heartbeat(cfg.state) if running else {}
    problems: list[str] = daemoninfo.config_problems(cfg)
    stopped: dict[str, Any] = {}
    documents: dict[str, int | None] = {c: 0 for c in CATEGORIES}
    last: dict[str, Any] | None = None
    reasons: dict[str, str] = {}
    disk_full = space_problem(cfg.database_url)
    if disk_full is not None:
        sessions = None
        problems.append(disk_full)
        documents = {c: None for c in CATEGORIES}  # unknown: the register is not opened
    elif sessions is None:
        try:
            sessions = installation.open_checked(cfg, create=False)
        except (RegisterError, installation.RootError) as exc:
            problems.append(exc.render())
    if sessions is not None:
        try:
            with sessions() as s:
                # A COUNT, not the agenda counters' sum: a restore from a drive that lacks a
                # letter raises the counters past it (numbers are never given twice), so the
                # counters can be ahead of the documents there are (22 – 47 ms at 200,000).
                for category, n in s.execute(select(Document.category, func.count()).group_by(Document.category)):
                    documents[category] = n
                doc = s.scalars(select(Document).order_by(Document.id.desc()).limit(1)).first()
                if doc is not None:
                    last = {"agenda": doc.agenda, "category": doc.category, "received_at": doc.received_at.isoformat()}
                for d in s.scalars(select(Document).where(Document.state == DocumentState.SOURCE_STUCK)):
                    problems.append(_("{agenda} is filed, but its scan {path} could not be removed from the drop folder: remove it by hand").format(
                        agenda=d.agenda, path=_(naming.WITHHELD) if d.category == EXEMPT else naming.display_name(d.source_relpath)))
                if not running:
                    staged = s.scalar(select(func.count()).where(Document.state == DocumentState.STAGED)) or 0
                    if staged:
                        problems.append(_("{n} document(s) are half-filed after a stop; start the daemon to finish them").format(n=staged))
                for item in s.scalars(select(ReviewItem).order_by(ReviewItem.id)):
                    reasons[item.name_sha256] = item.reason
        except RegisterError as exc:  # a damaged page met (register/db.py): said, and nothing more is read
            problems.append(exc.render())
            sessions = None
    drives: list[dict[str, Any]] = []
    if sessions is not None:
        drives, drive_problems = _drives(cfg, sessions, beat.get("drives") if running else None)
        problems += drive_problems
    review = _review_files(cfg.review_dir, problems)
    for name in review:
        shown = naming.display_name(os.fsencode(name))
        reason = render(reasons[naming.name_key(name)]) if naming.name_key(name) in reasons else _("moved to review")
        problems.append(_("needs review: {name}: {reason}").format(name=shown, reason=reason))
    # Exempt items are kept apart and keep their protection: no name, and the only way
    # back offered is into dikecualikan/ (masuk/ or keluar/ would file them unencrypted).
    exempt_review = _review_files(cfg.review_dir / DROP_FOLDER[EXEMPT], problems if cfg.review_dir.is_dir() else [])
    keys = _exempt_review_keys(cfg) if exempt_review else None
    for name in exempt_review:
        key = keys.review_name(name) if keys else None
        reason = render(reasons[key]) if key in reasons else _("moved to review")
        problems.append(_(
            "needs review: {folder}/{withheld} (exempt): {reason}. When it is fixed, move it back into "
            "{folder}/ only: any other folder would file it unencrypted"
        ).format(folder=DROP_FOLDER[EXEMPT], withheld=_(naming.WITHHELD), reason=reason))
    review += exempt_review
    if running:
        pending = int(beat.get("pending", 0))
        problems = [render(p) for p in beat.get("problems", [])] + problems
        waiting = [{**w, "reason": render(w.get("reason"))} for w in beat.get("waiting", [])]
        stale = _seconds_since(beat.get("heartbeat"))
        if (stale is None or stale > STALE_HEARTBEAT) and disk_full is None:
            problems.insert(0, _("the daemon holds its lock but has not reported for {s} s: it may be stuck; restart it").format(
                s=int(stale) if stale is not None else "?"))
        overflows = beat.get("inotify_overflows") or None
    else:
        overflows = None
        stopped, why = daemoninfo.stopped(cfg, state.read_heartbeat(cfg.state), lambda iso: _local(cfg, iso))
        problems.insert(0, why)
        pending, exempt_waiting = _count_drop(cfg)
        if exempt_waiting and cfg.recipient_problem:
            problems.append(render(encode("exempt_waiting", n=exempt_waiting, why=nested(encode("no_recipient_short")))))
        waiting = []
    duplicates = _count_files(cfg.duplicates_dir, problems)
    return {
        "daemon": {"running": running, "pid": beat.get("pid") if running else None,
                   "since": beat.get("since") if running else None, **stopped},
        "config": {"path": None if cfg.embedded else cfg.source, "embedded": cfg.embedded,
                   "root": str(daemoninfo.root_of(cfg))},
        "duplicates": duplicates,
        # Of them, those no person has marked as seen yet (``review seen``, the web page).
        "duplicates_unseen": _unseen_duplicates(cfg, sessions) if duplicates else 0,
        "documents": documents,
        "pending": pending,
        "review": len(review),
        "problems": problems,
        "last_document": last,
        "waiting": waiting,
        "notices": overflow_notices(cfg, overflows),  # nothing a person must do
        "inotify_overflows": overflows,
        "watch_mode": beat.get("watch_mode"),
        "state_disk_full": disk_full is not None,
        "drives": drives,
        "reports_outdated": _reports_outdated(cfg, sessions, problems),
    }


def overflow_notices(cfg: Any, overflows: dict[str, Any] | None) -> list[str]:
    """While the rescan that follows an inotify queue overflow runs (watch.Overflows)."""
    if not overflows or not overflows.get("rescanning"):
        return []
    return [_("the drop folder's change notifications overflowed at {when} (inotify queue overflow): events were "
              "lost, so naskahd is scanning the whole drop folder again; no scan is lost and nothing needs doing"
              ).format(when=_local(cfg, overflows.get("last_at")))]


def overflow_line(cfg: Any, overflows: dict[str, Any] | None) -> str | None:
    """The overflows since the daemon started, and the last rescan they led to."""
    if not overflows or not overflows.get("count"):
        return None
    line = _("Change notifications lost (inotify queue overflow): {n} time(s), last at {when}").format(
        n=overflows["count"], when=_local(cfg, overflows.get("last_at")))
    if overflows.get("rescanning"):
        return line + _("; the drop folder is being scanned again")
    return line + _("; the drop folder was scanned again in full at {when} ({n} file(s) found)").format(
        when=_local(cfg, overflows.get("rescanned_at")), n=overflows.get("rescan_entries"))


def _unseen_duplicates(cfg: Any, sessions: Any) -> int:
    from naskahd.letters import triage

    try:
        return triage.unseen_duplicates(cfg, sessions)
    except Exception:  # a register not migrated yet: none is known as seen
        return _count_files(cfg.duplicates_dir)


def _drives(cfg: Any, sessions: Any, live: dict[str, Any] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The registered backup drives (issue 17) and what about them needs a person."""
    from naskahd.drives import describe

    try:
        listed = describe.drives(cfg, sessions, live)
    except Exception as exc:  # a register from before the drives migration, not yet upgraded
        return [], [_("backup drives unknown: {error}").format(error=exc)] if "no such table" not in str(exc) else []
    problems = [d["problem"] for d in listed if d["problem"]]
    if live and "*" in live and live["*"].get("problem"):
        problems.append(_("the backup-drive watcher stopped: {error}").format(error=live["*"]["problem"]))
    age = describe.age_problem(cfg, listed)
    if age:
        problems.append(age)
    return listed, problems


def _drive_line(cfg: Any, d: dict[str, Any]) -> str:
    from naskahd.drives.sync import human_bytes

    where = _("plugged in at {path}").format(path=d["mountpoint"]) if d["present"] else _("not plugged in")
    states = {"idle": _("idle"), "syncing": _("syncing"), "refused": _("REFUSED"), "error": _("error")}
    line = _("Drive {name}: {state}, {where}, last verified {when}, {files} file(s) ({bytes}) to copy").format(
        name=d["name"], state=states.get(d["state"], d["state"]), where=where, when=_local(cfg, d["last_verified"]),
        files=d["pending_files"], bytes=human_bytes(d["pending_bytes"]))
    if d["present"] and d["state"] == "idle" and not d["pending_files"] and d["last_verified"]:
        line += _("; it may be unplugged and put back in the safe")
    return line


def _reports_outdated(cfg: Any, sessions: Any, problems: list[str]) -> list[int]:
    """Ids of reviewed reports whose data changed since (issue 20); also a problem line."""
    if sessions is None:
        return []
    from sqlalchemy.exc import OperationalError

    from naskahd.report.registry import outdated_reviewed

    try:
        ids = outdated_reviewed(sessions, cfg)
    except OperationalError:  # a register the daemon has not migrated yet: no reports table
        return []
    except RegisterError as exc:  # a damaged page met (register/db.py)
        problems.append(exc.render())
        return []
    if ids:
        problems.append(_("reviewed report(s) {ids} are out of date: the register changed since; generate them again").format(
            ids=", ".join(map(str, ids))))
    return ids


# The daemon writes its heartbeat at least every 30 s (service.py); three missed beats
# mean its main loop is stuck.
STALE_HEARTBEAT = 90


def _seconds_since(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(iso)).total_seconds()
    except ValueError:
        return None


def _local(cfg: Any, iso: str | None) -> str:
    if not iso:
        return "-"
    when = dt.datetime.fromisoformat(iso).astimezone(cfg.timezone)
    return when.strftime("%Y-%m-%d %H:%M:%S %Z")


def run(args: argparse.Namespace) -> int:
    from naskahd import config, statusd

    from naskahd import daemoninfo

    cfg = config.load(args.config)
    # Not allowed to read the state (the readers group): the running daemon answers.
    info = statusd.ask(cfg, {"command": "status"}) if statusd.needs_socket(cfg) else gather(cfg)
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
    else:
        print(daemoninfo.config_line(cfg, daemoninfo.found_by(args.config)))
        d = info["daemon"]
        if d["running"]:
            print(_("naskahd is running since {since} (pid {pid})").format(since=_local(cfg, d["since"]), pid=d["pid"]))
        else:
            print(_("naskahd is NOT running"))
        docs = info["documents"]
        if None in docs.values():
            print(_("Documents: unknown (the register is not opened)"))
        else:
            print(_("Documents: inbound {inbound}, outbound {outbound}, exempt {exempt}").format(**docs))
        print(_("Waiting in the drop folder: {n}").format(n=info["pending"]))
        print(_("Needing review: {n}").format(n=info["review"]))
        if info["review"]:
            print(_("  (files in {folder} that naskahd could not file; 'naskahd review' says why; move each into "
                    "masuk/, keluar/ or dikecualikan/ once fixed)").format(folder=cfg.review_dir))
        print(_("Duplicates set aside: {n}").format(n=info["duplicates"]))
        unseen = info.get("duplicates_unseen", info["duplicates"])  # a daemon from before answered
        if info["duplicates"] > unseen:
            print(_("  ({n} of them checked already: marked as seen)").format(n=info["duplicates"] - unseen))
        if unseen:
            print(_("  (files in {folder} whose content is already registered; 'naskahd duplicates' names the number "
                    "each repeats; they can be deleted once checked)").format(folder=cfg.duplicates_dir))
        last = info["last_document"]
        if last:
            print(_("Last filed: {agenda} at {when}").format(agenda=last["agenda"], when=_local(cfg, last["received_at"])))
        for drive in info["drives"]:
            print(_drive_line(cfg, drive))
        for w in info["waiting"]:
            print(_("  waiting: {path}: {reason}").format(path=w["path"], reason=w["reason"]))
        lost = overflow_line(cfg, info.get("inotify_overflows"))
        if lost:
            print(lost)
        for note in info.get("notices", []):
            print(_("Notice: {text}").format(text=note))
        if info["problems"]:
            print(_("Needs attention:"))
            for p in info["problems"]:
                print(f"  - {p}")
        else:
            print(_("Problems: none"))
    if info["state_disk_full"]:
        return EXIT_ATTENTION
    if not info["daemon"]["running"]:
        return EXIT_NOT_RUNNING
    return EXIT_ATTENTION if info["problems"] or info["review"] else EXIT_OK
