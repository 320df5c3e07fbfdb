"""The ``naskahd`` command line: one module per command, ``<name>_cmd.py``.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func`` to its ``run(args) -> int``. Errors from ``naskahd.errors`` are turned into a
message and an exit code here, and only here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from naskahd import __version__, i18n
from naskahd.errors import EXIT_ATTENTION, NaskahdError
from naskahd.i18n import _

COMMANDS = ("init", "run", "status", "list", "keygen", "encrypt", "decrypt", "reload", "check-config")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with ``command`` only that command's (the others'
    modules are then not imported: ``naskahd encrypt`` starts faster without them)."""
    parser = argparse.ArgumentParser(
        prog="naskahd",
        description=_("Files scanned official letters into an archive and a register."),
    )
    parser.add_argument("--version", action="version", version=f"naskahd {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=_("configuration file (default: $NASKAHD_CONFIG, then /etc/naskahd/naskahd.toml)"),
    )
    parser.add_argument("--lang", metavar="LANG", help=_("language of messages: id or en"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in (command,) if command in COMMANDS else COMMANDS:
        module = importlib.import_module(f"naskahd.cli.{name.replace('-', '_')}_cmd")
        module.register(sub)
    return parser


def _lang_from_argv(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return None


def _command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs, if only ``--config`` and ``--lang`` come before it.

    Anything else (``--help``, an abbreviated option, no command) gives None, and then the
    whole parser is built, so that help and error messages list every command.
    """
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config", "--lang"):
            i += 2
        elif arg.startswith(("--config=", "--lang=")):
            i += 1
        else:
            return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The language must be chosen before the parsers' help texts are built.
    i18n.setup(_lang_from_argv(argv))
    args = build_parser(_command_in(argv)).parse_args(argv)
    try:
        return int(args.func(args))
    except NaskahdError as exc:
        print(f"naskahd: {exc.render()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_ATTENTION
