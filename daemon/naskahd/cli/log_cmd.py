"""``naskahd log [--since DATE] [--json]``: the audit trail, oldest first."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("log", help=_("show the audit trail"))
    p.add_argument("--since", metavar="DATE", help=_("only events on or after DATE (YYYY-MM-DD, office time)"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from naskahd import audit, config, installation
    from naskahd.cli.list_cmd import _since

    cfg = config.load(args.config)
    since = _since(cfg, args.since) if args.since else None
    sessions = installation.open_checked(cfg, create=False)
    with sessions() as s:
        rows = [audit.as_dict(r) for r in audit.events(s, since)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for r in rows:
        when = dt.datetime.fromisoformat(r["at"]).astimezone(cfg.timezone).strftime("%Y-%m-%d %H:%M:%S")
        details = " ".join(f"{k}={v}" for k, v in sorted(r["details"].items()))
        print(f"{r['seq']:>6}  {when}  {r['event']:<20} {r['actor']:<12} {details}")
    if not rows:
        print(_("No audit events."))
    return 0
