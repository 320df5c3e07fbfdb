"""``naskahd encrypt FILE... -r RECIPIENT [-r ...] [-o OUT | --output-dir DIR]``.

Writes standard age files (``FILE.age`` by default) through a durable temp file: a
crash or an error leaves no partial output, and an existing file is never overwritten.
Imports stay minimal (no register, no SQLAlchemy): this runs on multi-GB files and its
memory use should be the encryptor's, not the daemon's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from naskahd.errors import NaskahdError, UsageError
from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("encrypt", help=_("encrypt files to age recipients (FILE -> FILE.age)"))
    p.add_argument("files", nargs="+", metavar="FILE", help=_("file to encrypt"))
    p.add_argument("-r", "--recipient", action="append", required=True, metavar="AGE1...",
                   help=_("age recipient (public key); repeatable"))
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="OUT", help=_("output file (only with one FILE)"))
    out.add_argument("--output-dir", metavar="DIR", help=_("write FILE.age files into DIR"))
    p.set_defaults(func=run)


def _targets(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    sources = [Path(f) for f in args.files]
    if args.output and len(sources) != 1:
        raise UsageError(_("-o takes one input file; use --output-dir for several"))
    if args.output:
        targets = [Path(args.output)]
    elif args.output_dir:
        directory = Path(args.output_dir)
        if not directory.is_dir():
            raise NaskahdError(_("the output folder {path} does not exist").format(path=directory))
        targets = [directory / (s.name + ".age") for s in sources]
    else:
        targets = [s.with_name(s.name + ".age") for s in sources]
    seen: set[Path] = set()
    for target in targets:
        if target.exists() or target.is_symlink():
            raise NaskahdError(_("{path} already exists; refusing to overwrite it").format(path=target))
        if target.resolve() in seen:
            raise UsageError(_("two inputs would be written to {path}").format(path=target))
        seen.add(target.resolve())
    return list(zip(sources, targets, strict=True))


def run(args: argparse.Namespace) -> int:
    from naskahd import age, durable

    recipients = [age.parse_recipient(r) for r in args.recipient]
    for source, target in _targets(args):
        try:
            src = open(source, "rb")
        except OSError as exc:
            raise NaskahdError(_("cannot read {path}: {error}").format(path=source, error=exc.strerror)) from None
        try:
            with src, durable.create(target) as dst:
                age.encrypt_stream(src, dst, recipients)
        except FileExistsError:
            raise NaskahdError(_("{path} already exists; refusing to overwrite it").format(path=target)) from None
        except OSError as exc:
            raise NaskahdError(
                _("cannot encrypt {path} to {target}: {error}; nothing was written").format(
                    path=source, target=target, error=exc.strerror or exc)
            ) from None
        print(target)
    return 0
