"""``naskahd restore --from MOUNTPOINT --root DIR``: rebuild an installation (archive,
register, configuration) from a backup drive alone, verifying every hash on the way."""

from __future__ import annotations

import argparse
from pathlib import Path

from naskahd.errors import EXIT_ATTENTION, EXIT_OK
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("restore", help=_("rebuild an installation from a backup drive alone"))
    p.add_argument("--from", dest="source", required=True, metavar="MOUNTPOINT", help=_("where the backup drive is mounted"))
    p.add_argument("--root", required=True, metavar="DIR", help=_("the new installation's folder (new or empty)"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from naskahd.drives import restore, sync

    root = Path(args.root).absolute()
    done = restore.restore(Path(args.source), root)
    print(_("Restored {n} document(s) ({size}) into {root}, every hash checked.").format(n=done.documents, size=sync.human_bytes(done.bytes), root=root))
    for p in done.problems:
        print(f"  - {p}")
    print(_("Next: start it with 'naskahd --config {config} run'; register the backup drive again on this host "
            "('naskahd drive register'); exempt letters open with the officer's identity as before.").format(config=root / "naskahd.toml"))
    return EXIT_ATTENTION if done.problems else EXIT_OK
