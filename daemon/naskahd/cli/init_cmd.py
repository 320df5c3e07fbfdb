"""``naskahd init --root DIR``: write DIR/naskahd.toml and create the folder tree and register."""

from __future__ import annotations

import argparse
from pathlib import Path

from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("init", help=_("create a configuration, the folder tree and the register under DIR"))
    p.add_argument("--root", required=True, metavar="DIR", help=_("folder to hold naskahd.toml, drop/, archive/ and state/"))
    p.add_argument("--recipient", "-r", action="append", default=[], metavar="AGE1...",
                   help=_("age recipient (public key) exempt documents are encrypted to; repeatable"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: every command's parser is built at each start.
    from naskahd import config as config_mod
    from naskahd import durable
    from naskahd import installation
    from naskahd.cli.invocation import command
    from naskahd.errors import ConfigError, NaskahdError
    from naskahd.oserrors import describe
    from naskahd.recipients import parse_all
    from naskahd.rollback import Undo
    from naskahd.service import make_tree

    root = Path(args.root).absolute()
    target = root / "naskahd.toml"
    # Everything is checked before anything is written: a bad --recipient or --root is
    # refused with nothing created.
    parse_all(args.recipient)
    _check_root(root)
    if target.exists():
        raise ConfigError(_("a configuration already exists there; edit it, or choose another --root"),
                          source=str(target), key="--root", value=str(root))
    text = config_mod.render_toml(root, args.recipient)
    import tomllib

    cfg = config_mod.parse(tomllib.loads(text), source=str(target), base=root)
    try:
        with Undo([root, target, cfg.drop, cfg.archive, cfg.state]):
            durable.makedirs(root)
            durable.write_bytes(target, text.encode(), mode=0o644)
            installation.initialise(cfg)  # the roots, their markers, the register
            make_tree(cfg)
    except OSError as exc:
        raise NaskahdError(_("cannot create the installation: {error}; nothing was left behind").format(
            error=describe(exc))) from None
    print(_("Created {config}").format(config=target))
    print(_("Drop scans into {drop}/masuk (inbound), keluar (outbound) or dikecualikan (exempt).").format(drop=cfg.drop))
    print(_("Start the daemon with: {command}").format(command=command("--config", str(target), "run")))
    return 0


def _check_root(root: Path) -> None:
    from naskahd.errors import UsageError

    for folder in (root, *root.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise UsageError(_("{path} is a file, not a folder: choose a folder for --root").format(path=folder))
            break
