"""``naskahd init --root DIR``: write DIR/naskahd.toml and create the folder tree and register.

Without ``--root``: a new installation in the folders the configuration (``--config``, or
/etc/naskahd/naskahd.toml) names, e.g. those systemd-tmpfiles made for the service; run
it as the service's user (``runuser -u naskahd -- naskahd init``) so that it owns them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from naskahd.i18n import _


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("init", help=_("create a configuration, the folder tree and the register under DIR"))
    p.add_argument("--root", metavar="DIR", help=_("folder to hold naskahd.toml, drop/, archive/ and state/ (without it: the folders of the configuration file)"))
    p.add_argument("--recipient", "-r", action="append", default=[], metavar="AGE1...",
                   help=_("age recipient (public key) exempt documents are encrypted to; repeatable"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: every command's parser is built at each start.
    from naskahd import config as config_mod
    from naskahd import durable
    from naskahd import installation
    from naskahd.cli.invocation import command
    from naskahd.errors import ConfigError, NaskahdError, UsageError
    from naskahd.oserrors import describe
    from naskahd.recipients import parse_all
    from naskahd.rollback import Undo
    from naskahd.service import make_tree

    if args.root is None:
        if args.recipient:
            raise UsageError(_("--recipient goes with --root; without it, put the recipients in the configuration file"))
        cfg = config_mod.load(args.config)
        if cfg.embedded:
            raise UsageError(_("no configuration file: give --root DIR, or --config FILE whose folders to initialise"))
        try:
            installation.initialise(cfg)
            make_tree(cfg)
            made = _certificate(cfg)
        except OSError as exc:
            raise NaskahdError(_("cannot create the installation: {error}; nothing was left behind").format(
                error=describe(exc))) from None
        print(made)
        print(_("Initialised the folders of {config}: drop {drop}, archive {archive}, state {state}").format(
            config=cfg.source, drop=cfg.drop, archive=cfg.archive, state=cfg.state))
        return 0
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
            made = _certificate(cfg)
    except OSError as exc:
        raise NaskahdError(_("cannot create the installation: {error}; nothing was left behind").format(
            error=describe(exc))) from None
    print(_("Created {config}").format(config=target))
    print(_("Drop scans into {drop}/masuk (inbound), keluar (outbound) or dikecualikan (exempt).").format(drop=cfg.drop))
    print(_("Start the daemon with: {command}").format(command=command("--config", str(target), "run")))
    print(made)
    return 0


def _certificate(cfg: object) -> str:
    """The web page's HTTPS certificate (issue 21), made in the state folder if missing."""
    from naskahd.web import tls

    cert, fingerprint, made = tls.ensure(cfg)
    if made:
        return _("Made the web page's HTTPS certificate {path} (SHA-256 fingerprint {fingerprint})").format(
            path=cert, fingerprint=fingerprint)
    return _("The web page's HTTPS certificate is {path} (SHA-256 fingerprint {fingerprint})").format(
        path=cert, fingerprint=fingerprint or "?")


def _check_root(root: Path) -> None:
    from naskahd.errors import UsageError

    for folder in (root, *root.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise UsageError(_("{path} is a file, not a folder: choose a folder for --root").format(path=folder))
            break
