"""SIGHUP: read the configuration again and apply it without a restart.

The file is parsed and validated exactly as at start (``config.load``). Invalid: the
reason is logged (``config.reload_failed``) and the configuration in force stays. Valid
but changing what only a restart can change (the three folders, the watch mode):
refused (``config.reload_refused``), nothing applied. Otherwise every changed setting
(rules, recipients, settle times, ignore globs, the office, and whatever registered a
hook, such as the drives) takes effect for what the loop looks at next; a batch being
filed is finished first (the loop only reloads between rounds), and early copies made
under the old rules or recipients are thrown away, never used. ``config.reloaded`` names
what changed, and a full rescan follows.

The outcome is kept in ``Daemon.last_reload`` (written to ``state/daemon.json``) for
``naskahd reload``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from naskahd import config as config_mod
from naskahd.errors import NaskahdError
from naskahd.i18n import _

if TYPE_CHECKING:
    from naskahd.config import Config
    from naskahd.service import Daemon

# Config field -> the key a person writes in the file.
KEYS = {
    "drop": "paths.drop", "archive": "paths.archive", "state": "paths.state",
    "office_name": "office.name", "timezone": "office.timezone",
    "watch_mode": "watch.mode", "settle_seconds": "watch.settle_seconds",
    "incomplete_after_seconds": "watch.incomplete_after_seconds", "rescan_seconds": "watch.rescan_seconds",
    "content_check": "watch.content_check", "ignore": "watch.ignore",
    "rules": "rules", "recipients": "encryption.recipients",
    "office_place": "office.place", "backup_max_age_days": "backup.max_age_days",
    "eject_after_sync": "drives.eject_after_sync", "sifat": "letters.sifat",
}
RESTART_ONLY = ("drop", "archive", "state", "watch_mode")
_NOT_SETTINGS = ("source", "embedded", "recipient_problem")


def changes(old: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """Changed settings: field name -> (old, new)."""
    out = {}
    for f in dataclasses.fields(old):
        if f.name in _NOT_SETTINGS:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a != b:
            out[f.name] = (a, b)
    return out


def shown(name: str, value: Any) -> Any:
    """A value for the log: rules as text, recipients only counted (and no letter's name
    is ever in a setting)."""
    if name == "rules":
        return [" ".join(x for x in (r.category, f"path={r.path}" if r.path else "", f"name={r.name.pattern}" if r.name else "") if x) for r in value]
    if name == "recipients":
        return f"{len(value)} recipient(s)"
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "key"):  # ZoneInfo
        return value.key
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def reload(daemon: Daemon) -> dict[str, Any]:
    """Re-read ``daemon.config``'s file; apply it or keep the old one. Returns the outcome."""
    old = daemon.config
    count = int(daemon.last_reload.get("count", 0)) + 1
    outcome: dict[str, Any] = {"count": count, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    try:
        new = config_mod.load(None if old.embedded else old.source)
    except NaskahdError as exc:
        daemon.log.error("config.reload_failed", config=old.source, error=exc.render(), kept="the configuration in force")
        return {**outcome, "result": "invalid", "detail": exc.render()}
    changed = changes(old, new)
    fixed = [KEYS.get(k, k) for k in RESTART_ONLY if k in changed]
    if fixed:
        why = _("{keys} cannot change while the daemon runs: restart it (systemctl restart naskahd); the configuration in force is unchanged").format(keys=", ".join(fixed))
        daemon.log.error("config.reload_refused", config=old.source, keys=fixed, reason=why)
        return {**outcome, "result": "refused", "detail": why}
    if not changed:
        daemon.log.info("config.reloaded", config=new.source, changed={})
        daemon.config = new  # e.g. the recipients' problem text, which compares equal
        return {**outcome, "result": "unchanged", "detail": ""}
    apply(daemon, new, changed)
    daemon.log.info("config.reloaded", config=new.source, changed={KEYS.get(k, k): [shown(k, a), shown(k, b)] for k, (a, b) in changed.items()})
    try:  # the audit trail keeps which keys changed (their values are in the log)
        from naskahd import audit

        audit.record_now(daemon.filer.sessions, "config.reloaded", keys=", ".join(KEYS.get(k, k) for k in changed))
    except Exception as exc:  # a busy or full register must not undo a valid reload
        daemon.log.error("audit.record_failed", event="config.reloaded", error=str(exc))
    if new.recipient_problem and "recipients" in changed:
        daemon.log.warning("encryption.no_recipient", problem=new.recipient_problem)
    return {**outcome, "result": "applied", "detail": ", ".join(KEYS.get(k, k) for k in changed)}


def apply(daemon: Daemon, new: Config, changed: dict[str, tuple[Any, Any]]) -> None:
    from naskahd.service import parse_recipients

    recipients = parse_recipients(new) if "recipients" in changed else daemon.filer.recipients
    daemon.config = new
    daemon.filer.reconfigure(new, recipients)
    daemon.watcher.config = new
    if {"rules", "recipients", "content_check", "timezone"} & changed.keys():
        # Made under the old rules or recipients: never used, made again when due.
        daemon.filer.prune_early(lambda _rel: None)
    daemon.settler.settle = new.settle_seconds
    daemon.settler.incomplete_after = new.incomplete_after_seconds
    for hook in daemon.reload_hooks:
        hook(new)
