"""``naskahd check-config [--config F]``: validate a configuration file; the daemon is not touched.

Exit 0 valid (with a one-line summary), 78 invalid (the file, the key, the value, the reason).
"""

from __future__ import annotations

import argparse
import sys

from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check-config", help=_("validate a configuration file without touching the daemon"))
    # --config (before or after the command, cli/__init__.py) names the file to check.
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from naskahd import config

    cfg = config.load(args.config)
    if cfg.embedded:
        print(_("no configuration file: the embedded default is valid (rooted at {root})").format(root=cfg.drop.parent))
        return 0
    print(_("{source}: valid ({rules} rule(s), {recipients} recipient(s); drop {drop}, archive {archive}, state {state})").format(
        source=cfg.source, rules=len(cfg.rules), recipients=len(cfg.recipients), drop=cfg.drop, archive=cfg.archive, state=cfg.state))
    if cfg.recipient_problem:
        print(_("note: {problem}").format(problem=cfg.recipient_problem), file=sys.stderr)
    return 0
