"""What ``status`` and ``drive list`` say about each registered drive."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from naskahd.config import Config
from naskahd.drives import mounts, plan
from naskahd.i18n import _
from naskahd.register import Drive


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat(timespec="seconds") if t else None


def present_mounts() -> dict[str, tuple[mounts.Mount, str]]:
    """UUID (lower case) → (mount, device) of every mounted block-device filesystem."""
    out = {}
    for mount, node in mounts.mounted_block_devices():
        ident = mounts.identity(node)
        if ident.uuid:
            out.setdefault(ident.uuid.lower(), (mount, node))
    return out


def drives(cfg: Config, sessions: sessionmaker[Session], live: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One object per registered drive (the ``status --json`` ``drives`` list). ``live``: the
    daemon's view (state, problem) by drive name, from its heartbeat."""
    live = live or {}
    out = []
    with sessions() as s:
        registered = list(s.scalars(select(Drive).order_by(Drive.name)))
        # Looking at the mounts runs blkid/udev for each one: only when there is a drive to find.
        found = present_mounts() if registered else {}
        for d in registered:
            files, size = plan.pending(s, d.id)
            here = found.get(d.uuid.lower())
            info = live.get(d.name, {})
            out.append({
                "name": d.name, "uuid": d.uuid, "label": d.label, "fstype": d.fstype,
                "present": here is not None, "mountpoint": here[0].mountpoint if here else None,
                "state": info.get("state", "idle"), "last_sync": _iso(d.last_sync_at), "last_verified": _iso(d.last_verified_at),
                "registered_at": _iso(d.registered_at),
                "pending_files": files, "pending_bytes": size, "problem": info.get("problem"),
            })
    return out


def age_problem(cfg: Config, listed: list[dict[str, Any]], now: dt.datetime | None = None) -> str | None:
    """"The backup drive has not been updated for N days", from the newest verified backup
    on any drive (or, before the first, from the first registration)."""
    if not listed:
        return None
    now = now or dt.datetime.now(dt.UTC)
    stamps = [dt.datetime.fromisoformat(d["last_verified"]) for d in listed if d["last_verified"]]
    newest = max(stamps) if stamps else min(dt.datetime.fromisoformat(d["registered_at"]) for d in listed)
    days = (now - newest).total_seconds() / 86400
    if days <= cfg.backup_max_age_days:
        return None
    return _("the backup drive has not been updated for {n} days: plug in a registered drive and let it sync").format(n=int(days))
