"""``naskahd drive register MOUNTPOINT --name NAME [--install-units DIR]``, ``drive list
[--json]``, ``drive forget NAME``: the registered backup drives."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from naskahd.errors import NaskahdError, UsageError
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("drive", help=_("register, list or forget backup drives"))
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    r = verbs.add_parser("register", help=_("register the drive mounted at MOUNTPOINT and write its identity token"))
    r.add_argument("mountpoint", metavar="MOUNTPOINT")
    r.add_argument("--name", required=True, help=_("a short name for the drive (letters, digits, - and _)"))
    r.add_argument("--install-units", metavar="DIR", help=_("write the udev rule and the systemd mount unit into DIR instead of printing them"))
    r.set_defaults(func=run_register)
    ls = verbs.add_parser("list", help=_("list the registered drives"))
    ls.add_argument("--json", action="store_true", help=_("machine-readable output"))
    ls.set_defaults(func=run_list)
    f = verbs.add_parser("forget", help=_("forget a registered drive (the files on it are left as they are)"))
    f.add_argument("name", metavar="NAME")
    f.set_defaults(func=run_forget)


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    from naskahd import config
    from naskahd import installation

    cfg = config.load(args.config)
    return cfg, installation.open_checked(cfg, create=True)  # never a register in place of a missing disk's


def run_register(args: argparse.Namespace) -> int:
    from sqlalchemy import or_, select

    from naskahd import hostsecret
    from naskahd.drives import copy, layout, mounts, token, units
    from naskahd.register import Drive

    name = args.name
    if not units.NAME_RE.fullmatch(name):
        raise UsageError(_("--name {name!r}: use 1 to 32 letters, digits, '-' or '_', starting with a letter or digit").format(name=name))
    mount = mounts.at(args.mountpoint)
    if mount is None:
        raise NaskahdError(_("{path} is not a mount point: mount the drive first").format(path=args.mountpoint))
    node = mounts.devnode_of(mount)
    if node is None:
        raise NaskahdError(_("{path} is not on a block device (it is {fstype}): only an external drive can be registered").format(path=args.mountpoint, fstype=mount.fstype))
    ident = mounts.identity(node)
    if not ident.uuid:
        raise NaskahdError(_("the filesystem on {device} has no UUID; make it with mkfs (it sets one) and try again").format(device=node))
    cfg, sessions = _open(args)
    with sessions() as s:
        clash = s.scalars(select(Drive).where(or_(Drive.name == name, Drive.uuid == ident.uuid))).first()
    if clash is not None:
        raise NaskahdError(_("drive {name} (UUID {uuid}) is already registered; 'naskahd drive forget {name}' first to register it again").format(name=clash.name, uuid=clash.uuid))
    secret = hostsecret.load(cfg.state)
    drive_id = token.new_drive_id()
    try:
        with copy.DriveRoot(mount) as root:
            root.write(layout.TOKEN, token.render(secret, drive_id, ident.uuid))
            copy.syncfs(root.fd)
    except OSError as exc:
        raise NaskahdError(_("cannot write the identity token onto {path}: {error}").format(path=args.mountpoint, error=exc.strerror or exc)) from None
    with sessions.begin() as s:
        s.add(Drive(name=name, uuid=ident.uuid, label=ident.label or None, fstype=ident.fstype or mount.fstype,
                    model=ident.model, serial=ident.serial, token_id=drive_id, registered_at=dt.datetime.now(dt.UTC)))
    print(_("Registered drive {name} (UUID {uuid}, {fstype}); its identity token is on it.").format(name=name, uuid=ident.uuid, fstype=ident.fstype or mount.fstype))
    rule, unit = units.udev_rule(name, ident.uuid), units.mount_unit(name, ident.uuid, ident.fstype)
    if args.install_units:
        folder = Path(args.install_units)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / units.rule_name(name)).write_text(rule, encoding="utf-8")
        (folder / units.mount_unit_name(name)).write_text(unit, encoding="utf-8")
        print(_("Wrote {rule} and {unit} into {dir}; copy them to /etc/udev/rules.d/ and /etc/systemd/system/").format(
            rule=units.rule_name(name), unit=units.mount_unit_name(name), dir=folder))
    else:
        print(_("Install these so that the drive is mounted at {path} when it is plugged in:").format(path=units.mountpoint(name)))
        print(f"\n# /etc/udev/rules.d/{units.rule_name(name)}\n{rule}\n# /etc/systemd/system/{units.mount_unit_name(name)}\n{unit}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from naskahd.drives import describe

    cfg, sessions = _open(args)
    listed = describe.drives(cfg, sessions)
    if args.json:
        print(json.dumps(listed, ensure_ascii=False, indent=2))
        return 0
    if not listed:
        print(_("No drives registered. Register one with 'naskahd drive register MOUNTPOINT --name NAME'."))
    for d in listed:
        where = d["mountpoint"] or _("not plugged in")
        print(_("{name}: UUID {uuid}, {where}; last verified {when}; {files} file(s) to copy").format(
            name=d["name"], uuid=d["uuid"], where=where, when=d["last_verified"] or _("never"), files=d["pending_files"]))
    return 0


def run_forget(args: argparse.Namespace) -> int:
    from sqlalchemy import delete, select

    from naskahd.register import Copy, Drive

    _cfg, sessions = _open(args)
    with sessions.begin() as s:
        drive = s.scalars(select(Drive).where(Drive.name == args.name)).first()
        if drive is None:
            raise NaskahdError(_("no drive named {name} is registered ('naskahd drive list')").format(name=args.name))
        s.execute(delete(Copy).where(Copy.drive_id == drive.id))
        s.delete(drive)
    print(_("Forgot drive {name}; the files on it were left as they are.").format(name=args.name))
    return 0
