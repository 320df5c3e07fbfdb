"""What `status` tells about the daemon and the configuration, beyond the counts.

A daemon that is not running is a problem: when it stopped (``state/daemon.json``),
whether it stopped cleanly, and how to start it. Which configuration was read, and when
none was found, that the embedded default is in use and where its root is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from naskahd import state
from naskahd.i18n import _


def found_by(explicit: str | None) -> str:
    """How the configuration was found: ``--config``, ``$NASKAHD_CONFIG``, the system file, or none."""
    import os

    from naskahd import config

    if explicit:
        return "--config"
    if os.environ.get("NASKAHD_CONFIG"):
        return "$NASKAHD_CONFIG"
    if config.SYSTEM_CONFIG.exists():
        return str(config.SYSTEM_CONFIG)
    return "embedded"


def root_of(cfg: Any) -> Path:
    return Path(cfg.drop).parent


def config_line(cfg: Any, how: str) -> str:
    if cfg.embedded:
        return _("Configuration: none found (no --config, no $NASKAHD_CONFIG, no /etc/naskahd/naskahd.toml); "
                 "the embedded default is in use, rooted at {root}").format(root=root_of(cfg))
    return _("Configuration: {path} (found by {how})").format(path=cfg.source, how=how)


def config_problems(cfg: Any) -> list[str]:
    if cfg.embedded and not Path(cfg.state).exists():
        return [_("the embedded default's root {root} holds no naskahd installation; if naskahd is installed "
                  "elsewhere, give --config PATH (or set $NASKAHD_CONFIG)").format(root=root_of(cfg))]
    return []


def start_command(cfg: Any) -> str:
    from naskahd.cli.invocation import command

    if cfg.embedded:
        return command("run")
    return command("--config", str(cfg.source), "run")


def stopped(cfg: Any, beat: dict[str, Any], local: Any) -> tuple[dict[str, Any], str]:
    """(JSON fields, the problem) for a daemon that is not running, from its last heartbeat file."""
    how = _("start it with 'systemctl start naskahd' (installed as a service) or '{command}'").format(
        command=start_command(cfg))
    if not beat:
        return ({"stopped_at": None, "stopped_cleanly": None},
                _("naskahd is not running and has never run with this state folder ({state}): {how}").format(
                    state=cfg.state, how=how))
    refused = beat.get("refused")
    if refused and beat.get("register") == state.file_identity(Path(cfg.register_path)):
        from naskahd.reasons import render

        return ({"stopped_at": beat.get("refused_at"), "stopped_cleanly": None},
                _("naskahd is not running: it refused to start at {when}: {why}").format(
                    when=local(beat.get("refused_at")), why=render(refused)))
    if beat.get("running") is False and beat.get("stopped_at"):
        return ({"stopped_at": beat["stopped_at"], "stopped_cleanly": True},
                _("naskahd is not running: it stopped cleanly at {when}; {how}").format(
                    when=local(beat["stopped_at"]), how=how))
    last = beat.get("heartbeat") or beat.get("since")
    return ({"stopped_at": last, "stopped_cleanly": False},
            _("naskahd is not running: it stopped without shutting down (crashed, killed or a power cut) "
              "after {when}; see 'journalctl -u naskahd', then {how}").format(when=local(last), how=how))
