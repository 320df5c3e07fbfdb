"""``naskahd run``: the daemon in the foreground (systemd runs the same command)."""

from __future__ import annotations

import argparse
import sys

from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help=_("run the daemon in the foreground"))
    p.add_argument("--log-format", choices=("auto", "json", "console"), default="auto",
                   help=_("JSON lines (journald) or readable console output; auto picks by terminal"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from naskahd import config, log
    from naskahd.service import Daemon

    cfg = config.load(args.config)
    log.setup(json={"auto": None, "json": True, "console": False}[args.log_format], timezone=cfg.timezone)
    if cfg.embedded:
        bar = "=" * 72
        print(bar, file=sys.stderr)
        print(_("naskahd: WARNING: no configuration file was found (no --config, no $NASKAHD_CONFIG, "
                "no /etc/naskahd/naskahd.toml)"), file=sys.stderr)
        print(_("naskahd: using the EMBEDDED DEFAULT, rooted at {root} (./naskahd-data of the folder it was started "
                "from); for an installation run 'naskahd init --root DIR' and start it with --config").format(
            root=cfg.drop.parent), file=sys.stderr)
        print(bar, file=sys.stderr)
    print(_("naskahd: drop scans into {drop}/masuk (inbound), {drop}/keluar (outbound), {drop}/dikecualikan (exempt)").format(drop=cfg.drop), file=sys.stderr)
    return Daemon(cfg).run()
