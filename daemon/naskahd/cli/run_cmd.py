"""``naskahd run``: the daemon in the foreground (systemd runs the same command)."""

from __future__ import annotations

import argparse
import sys

from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help=_("run the daemon in the foreground"))
    p.add_argument("--log-format", choices=("auto", "journal", "json", "console"), default="auto",
                   help=_("journald lines (priority per level), JSON lines or readable console output; auto picks journal under systemd, else by terminal"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from naskahd import config, log
    from naskahd.service import Daemon

    fmt = args.log_format
    log.setup(json={"auto": None, "json": True, "console": False, "journal": False}[fmt], journal=True if fmt == "journal" else None)
    cfg = config.load(args.config)
    if cfg.embedded:
        print(_("naskahd: no configuration file; using the embedded default rooted at {root}").format(root=cfg.drop.parent), file=sys.stderr)
    print(_("naskahd: drop scans into {drop}/masuk (inbound), {drop}/keluar (outbound), {drop}/dikecualikan (exempt)").format(drop=cfg.drop), file=sys.stderr)
    return Daemon(cfg).run()
