"""``naskahd verify [--archive] [--drive NAME] [--json]``: re-hash the archive and/or the
drives against the register. With no option: the archive and every mounted registered
drive. Exit 1 on any missing, changed or unexpected file."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from naskahd.errors import EXIT_ATTENTION, EXIT_OK, NaskahdError
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help=_("re-hash the archive and the drives against the register"))
    p.add_argument("--archive", action="store_true", help=_("check the archive"))
    p.add_argument("--drive", metavar="NAME", action="append", help=_("check this registered drive (may be repeated)"))
    p.add_argument("--json", action="store_true", help=_("machine-readable output"))
    p.set_defaults(func=run)


def _print(what: str, f: Any) -> None:
    if f.refused:
        print(_("{what}: refused: {why}").format(what=what, why=f.refused))
        return
    print(_("{what}: {n} file(s) checked, {missing} missing, {changed} changed, {unexpected} unexpected").format(
        what=what, n=f.checked, missing=len(f.missing), changed=len(f.changed), unexpected=len(f.unexpected)))
    for label, items in ((_("missing"), f.missing), (_("changed"), f.changed), (_("unexpected"), f.unexpected)):
        for item in items[:50]:
            print(f"  {label}: {item}")


def run(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from naskahd import config
    from naskahd.drives import copy, sync, verify
    from naskahd import installation
    from naskahd.register import Drive

    cfg = config.load(args.config)
    sessions = installation.open_checked(cfg, create=True)  # never a register in place of a missing disk's
    do_archive = args.archive or not args.drive
    results: dict[str, Any] = {}
    if do_archive:
        results["archive"] = verify.verify_archive(cfg.archive, sessions)
    drives_out: dict[str, Any] = {}
    with sessions() as s:
        registered = {d.name: d for d in s.scalars(select(Drive))}
    wanted = args.drive or ([] if args.archive else sorted(registered))
    for name in wanted:
        drive = registered.get(name)
        if drive is None:
            raise NaskahdError(_("no drive named {name} is registered ('naskahd drive list')").format(name=name))
        found = sync.find_mount(drive.uuid)
        if found is None:
            if args.drive:
                raise NaskahdError(_("drive {name} is not mounted (plug it in; it is mounted at /media/naskahd/{name})").format(name=name))
            continue  # no option: every registered drive that is mounted
        mount, _node = found
        with copy.DriveRoot(mount) as root:
            why = sync.check_identity(cfg, drive, root)
            if why is not None:
                f = verify.Findings(refused=why)
            else:
                f = verify.verify_drive(root, Path(mount.mountpoint), drive, sessions)
                if f.ok:
                    with sessions.begin() as s:
                        row = s.get(Drive, drive.id)
                        if row is not None:
                            row.last_verified_at = dt.datetime.now(dt.UTC)
        drives_out[name] = f
    ok = all(f.ok for f in [*results.values(), *drives_out.values()])
    if args.json:
        out: dict[str, Any] = {"ok": ok, "drives": {n: f.as_json() for n, f in drives_out.items()}}
        if "archive" in results:
            out["archive"] = results["archive"].as_json()
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        if "archive" in results:
            _print(_("archive"), results["archive"])
        for n, f in drives_out.items():
            _print(_("drive {name}").format(name=n), f)
    return EXIT_OK if ok else EXIT_ATTENTION
