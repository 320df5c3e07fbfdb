"""One sync of one registered drive: lock, identity, plan, copy and verify, record, snapshot.

``sync_drive`` is called by the daemon's drives thread (``monitor.py``) and by
``naskahd sync``; both take the same per-drive lock (``state/drive-NAME.lock``, flock), so
a drive is never synced twice at once. The register is written in one short transaction
per verified batch, on the caller's own connection: filing is never held back.

Nothing is written to a drive before its identity token verifies (token.py). What is
recorded as backed up was read back from the drive and matched the register's SHA-256.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from naskahd import audit, hostsecret, oserrors
from naskahd.config import Config
from naskahd.drives import batches, copy, layout, mounts, plan, recording, token
from naskahd.drives.mounts import Mount
from naskahd.errors import RegisterDamaged
from naskahd.i18n import _
from naskahd.log import get_logger
from naskahd.register import Drive

BATCH_FILES = 1024
BATCH_BYTES = 64 << 20
FIRST_BATCH_FILES = 128
ROUNDS = 3  # plan → copy → snapshot again while letters were filed during the sync
SNAPSHOT_EVERY = 3600.0  # seconds: a newer register snapshot is not replaced (the manifest has the rows since)


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


@dataclass
class Report:
    drive: str
    state: str  # done | refused | full | read_only | gone | busy | error | state_full | state_error
    copied: int = 0
    missing_files: int = 0
    missing_bytes: int = 0
    failed: list[str] = field(default_factory=list)
    message: str = ""
    folder: str = ""  # state_full, state_error: the host's folder at fault

    @property
    def ok(self) -> bool:
        return self.state == "done" and not self.failed and not self.missing_files


class DriveLock:
    """``state/drive-NAME.lock``: one sync per drive at a time, daemon and CLI alike."""

    def __init__(self, state: Path, name: str) -> None:
        self.path = state / f"drive-{name}.lock"
        self.fd = -1

    def acquire(self, *, wait: bool) -> bool:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(self.fd)
            self.fd = -1
            return False
        return True

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def held_elsewhere(self) -> bool:
        if self.acquire(wait=False):
            self.release()
            return False
        return True


def find_mount(drive_uuid: str) -> tuple[Mount, str] | None:
    """(mount, device node) of the mounted filesystem with this UUID, if any."""
    for mount, node in mounts.mounted_block_devices():
        ident = mounts.identity(node)
        if ident.uuid and ident.uuid.lower() == drive_uuid.lower():
            return mount, node
    return None


def check_identity(cfg: Config, drive: Drive, root: copy.DriveRoot) -> str | None:
    """Why this mounted filesystem is not the registered drive; None when its token verifies."""
    try:
        data = root.read(layout.TOKEN)
    except (FileNotFoundError, NotADirectoryError):
        data = None
    secret = hostsecret.load(cfg.state)
    return token.problem(secret, data, drive_id=drive.token_id, uuid=drive.uuid)


def sync_drive(
    cfg: Config, sessions: sessionmaker[Session], name: str, *, wait: bool = False,
    cancelled: Callable[[], bool] = lambda: False, on_state: Callable[[str], None] = lambda _s: None,
) -> Report:
    log = get_logger("drives")
    with sessions() as s:
        drive = s.scalars(select(Drive).where(Drive.name == name)).first()
    if drive is None:
        return Report(name, "error", message=_("no drive named {name} is registered ('naskahd drive list')").format(name=name))
    found = find_mount(drive.uuid)
    if found is None:
        return Report(name, "error", message=_("drive {name} is not mounted (plug it in; it is mounted at /media/naskahd/{name})").format(name=name))
    mount, node = found
    lock = DriveLock(cfg.state, name)
    if not lock.acquire(wait=wait):
        return Report(name, "busy", message=_("drive {name} is being synced already").format(name=name))
    try:
        on_state("syncing")
        return _sync_locked(cfg, sessions, drive, mount, node, log, cancelled)
    finally:
        lock.release()


def _sync_locked(cfg: Config, sessions: sessionmaker[Session], drive: Drive, mount: Mount, node: str,
                 log: Any, cancelled: Callable[[], bool]) -> Report:
    name = drive.name
    report = Report(name, "done")
    try:
        root = copy.DriveRoot(mount)
    except (OSError, copy.DriveChanged) as exc:
        return _stopped(report, "gone", sessions, drive, log, str(exc))
    with root:
        why = check_identity(cfg, drive, root)
        if why is not None:
            log.warning("security.drive_refused", drive=name, uuid=drive.uuid, mountpoint=mount.mountpoint, reason=why)
            report.state = "refused"
            audit.record_now(sessions, "drive.refused", drive=name)
            report.message = _("drive {name} refused: {reason}; nothing was written to it. If it really is the office's drive, forget it and register it again").format(name=name, reason=why)
            return report
        log.info("drive.sync_started", drive=name, mountpoint=mount.mountpoint, fstype=mount.fstype)
        left: tuple[int, int] | None = None  # what the drive lacks, as last asked
        try:
            for _round in range(ROUNDS):
                left = None
                copied = _copy_missing(cfg, sessions, drive, mount, node, root, report, log, cancelled)
                if cancelled():
                    return _stopped(report, "gone", sessions, drive, log, _("the daemon is stopping"))
                age = _snapshot_age(root)
                if age is None or (copied and age >= SNAPSHOT_EVERY):
                    _write_metadata(cfg, sessions, root)
                if not copied:
                    break
                with sessions() as s:
                    left = plan.pending(s, drive.id)
                if left[0] == 0:
                    break
            # Anchor the audit trail on the drive (docs/architecture.md): a register whose
            # whole chain was rewritten no longer holds this head.
            with sessions() as s:
                root.append(f"{layout.META}/{audit.ANCHOR_FILE}", audit.anchor_line(audit.head(s)).encode("ascii"))
        except copy.DriveChanged as exc:
            return _stopped(report, "gone", sessions, drive, log, str(exc))
        except RegisterDamaged as exc:  # the snapshot: the drive keeps the one it has
            return _stopped(report, "error", sessions, drive, log, exc.render())
        except StagingFailed as exc:
            report.folder = str(exc.folder)
            return _stopped(report, "state_full" if exc.full else "state_error", sessions, drive, log, exc.detail())
        except OSError as exc:
            if exc.errno in copy.FULL:
                return _stopped(report, "full", sessions, drive, log, exc.strerror)
            if exc.errno in copy.READ_ONLY:
                return _stopped(report, "read_only", sessions, drive, log, exc.strerror)
            if exc.errno in copy.GONE or not mounts.still_mounted(mount):
                return _stopped(report, "gone", sessions, drive, log, exc.strerror)
            return _stopped(report, "error", sessions, drive, log, str(exc))
    if left is not None:  # asked just after the last round's copies: not asked twice (an aggregate over the register)
        report.missing_files, report.missing_bytes = left
    elif report.copied or report.failed:
        with sessions() as s:
            report.missing_files, report.missing_bytes = plan.pending(s, drive.id)
    now = dt.datetime.now(dt.UTC)
    with sessions.begin() as s:
        row = s.get(Drive, drive.id)
        if row is not None:
            row.last_sync_at = now
            if not report.failed and not report.missing_files:
                row.last_verified_at = now
        audit.record(s, "drive.synced", drive=name, copied=report.copied, failed=len(report.failed),
                     missing=report.missing_files)
    report.message = _("drive {name}: {copied} file(s) copied and verified; it may be unplugged and put back in the safe").format(name=name, copied=report.copied)
    if report.failed:
        report.message += " " + _("{n} file(s) could not be copied: {first}").format(n=len(report.failed), first=report.failed[0])
    log.info("drive.synced", drive=name, copied=report.copied, failed=len(report.failed), missing=report.missing_files)
    if cfg.eject_after_sync and report.ok:
        _eject(node, name, log)
    return report


def _stopped(report: Report, state: str, sessions: sessionmaker[Session], drive: Drive, log: Any, detail: str | None) -> Report:
    report.state = state
    try:
        with sessions() as s:
            report.missing_files, report.missing_bytes = plan.pending(s, drive.id)
    except Exception:  # the register itself is unreachable: the numbers are unknown
        pass
    left = {"name": drive.name, "files": report.missing_files, "bytes": human_bytes(report.missing_bytes), "folder": report.folder}
    report.message = {
        "full": _("drive {name} is full: {files} file(s) ({bytes}) are not on it yet; use a larger drive, or free space on it"),
        "read_only": _("drive {name} is read-only: {files} file(s) ({bytes}) are not on it yet; check its write-protect switch and mount it writable"),
        "gone": _("drive {name} went away during the sync: {files} file(s) ({bytes}) are not on it yet; plug it in again to resume"),
        "error": _("drive {name}: the sync stopped: {files} file(s) ({bytes}) are not on it yet"),
        "state_full": _("drive {name}: the sync stopped: the disk of naskahd's state folder {folder} on this computer is full "
                        "(not the drive), so the register snapshot for the drive could not be made; free space on that disk "
                        "and sync again ({files} file(s), {bytes}, are not on the drive yet)"),
        "state_error": _("drive {name}: the sync stopped: the register snapshot for the drive could not be made in naskahd's "
                         "state folder {folder} on this computer ({files} file(s), {bytes}, are not on the drive yet)"),
    }[state].format(**left)
    if detail and state in ("error", "state_error"):
        report.message += f" ({detail})"
    log.warning("drive.sync_stopped", drive=drive.name, state=state, copied=report.copied, missing=report.missing_files, error=detail)
    return report


def _copy_missing(cfg: Config, sessions: sessionmaker[Session], drive: Drive, mount: Mount, node: str,
                  root: copy.DriveRoot, report: Report, log: Any, cancelled: Callable[[], bool]) -> int:
    with sessions() as s:
        wanted = plan.missing(s, drive.id)
        folders = {plan.folder_of(w.archive_path) for w in wanted}
        taken = plan.taken_paths(s, drive.id, wanted)
    p = plan.assign(wanted, taken, fstype=drive.fstype)
    for w in p.too_big:
        why = _("{agenda} is larger than 4 GiB, which a FAT32 drive cannot hold").format(agenda=w.agenda)
        if why not in report.failed:  # planned again by the next round: said once
            report.failed.append(why)
    for folder in folders:
        root.remove_temps(layout.on_drive(folder))
    items = [plan.Item(i.wanted, layout.on_drive(i.drive_path)) for i in p.items]
    copied = 0
    recorder = recording.Recorder(sessions, root, drive)

    def recorded(n: int) -> None:
        nonlocal copied
        if n:
            copied += n
            report.copied += n
            log.debug("drive.batch_verified", drive=drive.name, files=n, copied=report.copied)

    results = batches.copy_batches(root, cfg.archive, _batches(items), devnode=node, cancelled=cancelled)
    try:
        with contextlib.closing(results):  # stopped early: its temp files removed, its threads joined
            for result in results:
                if not mounts.still_mounted(mount):  # verified against a drive that is gone: record nothing
                    raise copy.DriveChanged(mount.mountpoint)
                for item, why in result.failed:
                    report.failed.append(f"{item.wanted.agenda}: {why}")
                    log.warning("drive.copy_failed", drive=drive.name, agenda=item.wanted.agenda, reason=why)
                if result.verified:
                    recorded(recorder.add(result.verified))
                if result.full is not None:
                    recorded(recorder.finish())
                    raise result.full
        recorded(recorder.finish())
    except BaseException:
        with contextlib.suppress(Exception):  # what was verified before the stop is still recorded
            recorded(recorder.finish())
        raise
    finally:
        recorder.close()
    return copied


def _batches(items: list[plan.Item], first: int = FIRST_BATCH_FILES) -> Iterator[list[plan.Item]]:
    """Batches of at most BATCH_FILES files and BATCH_BYTES bytes; the first ones smaller
    (``first`` files, then twice as many each time), so that the pipeline's threads all
    have work early, and a small sync is not one batch that nothing overlaps."""
    start, limit = 0, first
    while start < len(items):
        end, size = start, 0
        while end < len(items) and end - start < limit and (size < BATCH_BYTES or end == start):
            size += items[end].wanted.size
            end += 1
        yield items[start:end]
        start, limit = end, min(BATCH_FILES, limit * 2)


class StagingFailed(Exception):
    """The register snapshot could not be staged in the host's state folder (its disk is
    full, or not writable): a problem of the host, which must not read as the drive's."""

    def __init__(self, folder: Path, error: OSError | sqlite3.Error) -> None:
        super().__init__(str(error))
        self.folder, self.error = folder, error

    @property
    def full(self) -> bool:
        if isinstance(self.error, OSError):
            return self.error.errno in copy.FULL
        return getattr(self.error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(self.error)

    def detail(self) -> str:
        if isinstance(self.error, OSError):
            return oserrors.describe(self.error)
        return str(self.error)


def _snapshot_age(root: copy.DriveRoot) -> float | None:
    """Seconds since the drive's register snapshot was written, or None if it has none."""
    folder, _sep, name = layout.REGISTER.rpartition("/")
    try:
        st = os.stat(name, dir_fd=root.dir(folder, create=False), follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return max(0.0, time.time() - st.st_mtime)


def _write_metadata(cfg: Config, sessions: sessionmaker[Session], root: copy.DriveRoot) -> None:
    """The register snapshot and the configuration, then a manifest line naming the snapshot.
    The snapshot is staged in the state folder, hashed there and copied onto the drive in
    the kernel: a register of 200,000 rows (155 MB) never passes through Python's memory."""
    from naskahd.register.db import snapshot

    with tempfile.TemporaryDirectory(dir=cfg.state, prefix=".snapshot-") as tmp:
        target = Path(tmp) / "register.sqlite3"
        try:
            snapshot(cfg.database_url, target)
            staged = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
        except (OSError, sqlite3.Error) as exc:  # the host's state disk, not the drive: never "the drive is full"
            raise StagingFailed(cfg.state, exc) from exc
        try:
            try:
                with open(staged, "rb", closefd=False) as f:
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
                size = os.fstat(staged).st_size
            except OSError as exc:
                raise StagingFailed(cfg.state, exc) from exc
            root.write_from(layout.REGISTER, staged)
        finally:
            os.close(staged)
    if not cfg.embedded and cfg.source and os.path.exists(cfg.source):
        root.write(layout.CONFIG, Path(cfg.source).read_bytes())
    root.append(layout.MANIFEST, layout.manifest_line({
        "kind": "register", "path": layout.REGISTER, "size": size, "sha256": digest,
        "written_at": dt.datetime.now(dt.UTC).isoformat(),
    }))


UDISKSCTL = "udisksctl"


def eject_commands(tool: str, node: str) -> list[list[str]]:
    """What ``eject_after_sync`` runs, in order: unmount (the drive may then be unplugged),
    then power off (so it can be put straight into the safe)."""
    return [[tool, verb, "-b", node, "--no-user-interaction"] for verb in ("unmount", "power-off")]


def _eject(node: str, name: str, log: Any) -> None:
    tool = shutil.which(UDISKSCTL)
    if tool is None:
        log.info("drive.eject_skipped", drive=name, reason="udisksctl is not installed")
        return
    unmount, power_off = eject_commands(tool, node)
    try:
        out = subprocess.run(unmount, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("drive.eject_failed", drive=name, step="unmount", error=str(exc))
        return
    if out.returncode != 0:
        log.warning("drive.eject_failed", drive=name, step="unmount", error=(out.stderr or out.stdout).strip())
        return
    try:
        off = subprocess.run(power_off, capture_output=True, text=True, timeout=60)
        error = None if off.returncode == 0 else (off.stderr or off.stdout).strip() or f"exit status {off.returncode}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        error = str(exc)
    # Unmounted is what makes unplugging safe; a drive udisks cannot power off (a loop
    # device, some USB bridges) is still ejected.
    log.info("drive.ejected", drive=name, powered_off=error is None, **({"power_off_error": error} if error else {}))


__all__ = ["DriveLock", "Report", "check_identity", "find_mount", "human_bytes", "sync_drive"]
