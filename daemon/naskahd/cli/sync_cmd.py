"""``naskahd sync [--drive NAME]``: sync mounted registered drives now.

Works whether or not the daemon runs: both take the drive's lock (drives/sync.py), so if
the daemon is syncing the drive this waits for it, then copies whatever is still missing.
"""

from __future__ import annotations

import argparse
import sys

from naskahd.errors import EXIT_ATTENTION, EXIT_OK, NaskahdError
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sync", help=_("copy what a mounted registered drive lacks, and verify it"))
    p.add_argument("--drive", metavar="NAME", help=_("only this drive (default: every registered drive that is mounted)"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from naskahd import config
    from naskahd.drives import sync
    from naskahd import installation
    from naskahd.register import Drive

    cfg = config.load(args.config)
    sessions = installation.open_checked(cfg, create=True)  # never a register in place of a missing disk's
    with sessions() as s:
        names = [args.drive] if args.drive else [d.name for d in s.scalars(select(Drive).order_by(Drive.name)) if sync.find_mount(d.uuid)]
    if not names:
        raise NaskahdError(_("no registered drive is mounted: plug one in ('naskahd drive list' shows them)"))
    rc = EXIT_OK
    for name in names:
        if sync.DriveLock(cfg.state, name).held_elsewhere():
            print(_("Drive {name} is being synced (by the daemon); waiting for it to finish...").format(name=name), file=sys.stderr)
        report = sync.sync_drive(cfg, sessions, name, wait=True)
        print(report.message)
        for line in report.failed[:20]:
            print(f"  - {line}")
        if not report.ok:
            rc = EXIT_ATTENTION
    return rc
