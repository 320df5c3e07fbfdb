"""``naskahd reload``: make the running daemon read its configuration again (SIGHUP).

The file is validated here first: an invalid one is refused before the daemon is asked
(exit 78). Then the daemon is sent SIGHUP (as ``systemctl reload naskahd`` does) and its
outcome is read from ``state/daemon.json``: applied (exit 0), or refused or invalid, with
the daemon's reason, the old configuration still in force (exit 78).
"""

from __future__ import annotations

import argparse
import os
import signal
import time

from naskahd.errors import EXIT_CONFIG, EXIT_OK, NaskahdError
from naskahd.i18n import _

WAIT_SECONDS = 30.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("reload", help=_("make the running daemon read its configuration again"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from naskahd import config, state
    from naskahd.statusd import NotRunning

    cfg = config.load(args.config)  # invalid: ConfigError, exit 78, the daemon is not asked
    if not os.access(cfg.state, os.R_OK | os.X_OK):
        raise NaskahdError(_("cannot read the daemon's state in {state}: run it as root (or: systemctl reload naskahd)").format(state=cfg.state))
    if not state.daemon_running(cfg.state):
        raise NotRunning(path=str(cfg.state / state.LOCK_NAME))
    beat = state.read_heartbeat(cfg.state)
    before = int((beat.get("reload") or {}).get("count", 0))
    try:
        os.kill(int(beat["pid"]), signal.SIGHUP)
    except (KeyError, ValueError, ProcessLookupError):
        raise NotRunning(path=str(cfg.state / state.HEARTBEAT_NAME)) from None
    except PermissionError:
        raise NaskahdError(_("not allowed to signal the daemon (pid {pid}): run it as root (or: systemctl reload naskahd)").format(pid=beat["pid"])) from None
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        outcome = state.read_heartbeat(cfg.state).get("reload") or {}
        if int(outcome.get("count", 0)) > before:
            result, detail = outcome.get("result"), outcome.get("detail", "")
            if result == "applied":
                print(_("reloaded: changed {keys}").format(keys=detail))
                return EXIT_OK
            if result == "unchanged":
                print(_("reloaded: nothing changed"))
                return EXIT_OK
            print(_("not reloaded, the configuration in force is unchanged: {detail}").format(detail=detail))
            return EXIT_CONFIG
        time.sleep(0.1)
    raise NaskahdError(_("the daemon did not report the reload within {s:g} s; see journalctl -u naskahd").format(s=WAIT_SECONDS))
